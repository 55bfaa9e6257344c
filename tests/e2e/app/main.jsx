// The app a Knock customer would write: KnockProvider pointed at the gateway (given the signed-in
// user, which it identifies with PUT /v1/users/{id}: the default strategy), SlackKit and
// TeamsKit exactly as their docs show. Its config (gateway origin, pk_ key, a user token signed
// by the "app's backend") comes from /config.json, served next to this page by the test.
import {
  KnockMsTeamsProvider,
  KnockProvider,
  KnockSlackProvider,
  MsTeamsAuthButton,
  MsTeamsChannelCombobox,
  SlackAuthButton,
  SlackChannelCombobox,
} from "@knocklabs/react";
import "@knocklabs/react/dist/index.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

// What the test reads back: every message posted to this window, every completion callback.
window.__authMessages = [];
window.__authCompletions = [];
window.addEventListener("message", (event) => {
  window.__authMessages.push({ origin: event.origin, data: event.data });
});

function completion(provider) {
  return (result) => window.__authCompletions.push({ provider, result });
}

function App({ config }) {
  const recipient = {
    collection: config.recipient.collection,
    objectId: config.recipient.objectId,
  };
  return (
    <KnockProvider
      apiKey={config.publicKey}
      host={config.gatewayUrl}
      user={config.user}
      userToken={config.userToken}
    >
      <main style={{ fontFamily: "system-ui, sans-serif", maxWidth: 560, margin: "24px auto" }}>
        <h1 style={{ fontSize: 20 }}>Notifications for {config.recipient.objectId}</h1>
        <section data-testid="slack" style={{ marginBottom: 40, minHeight: 260 }}>
          <h2 style={{ fontSize: 16 }}>Slack</h2>
          <KnockSlackProvider
            knockSlackChannelId={config.slack.channelId}
            tenantId={config.tenantId}
          >
            <SlackAuthButton
              slackClientId={config.slack.clientId}
              redirectUrl={config.redirectUrl}
              onAuthenticationComplete={completion("slack")}
            />
            <div style={{ height: 16 }} />
            <SlackChannelCombobox slackChannelsRecipientObject={recipient} />
          </KnockSlackProvider>
        </section>
        <section data-testid="teams" style={{ minHeight: 300 }}>
          <h2 style={{ fontSize: 16 }}>Microsoft Teams</h2>
          <KnockMsTeamsProvider
            knockMsTeamsChannelId={config.teams.channelId}
            tenantId={config.tenantId}
          >
            <MsTeamsAuthButton
              graphApiClientId={config.teams.clientId}
              redirectUrl={config.redirectUrl}
              onAuthenticationComplete={completion("ms-teams")}
            />
            <div style={{ height: 16 }} />
            <MsTeamsChannelCombobox msTeamsChannelsRecipientObject={recipient} />
          </KnockMsTeamsProvider>
        </section>
      </main>
    </KnockProvider>
  );
}

fetch("/config.json")
  .then((response) => response.json())
  .then((config) => {
    createRoot(document.getElementById("root")).render(
      <StrictMode>
        <App config={config} />
      </StrictMode>,
    );
  });
