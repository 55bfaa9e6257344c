// SlackKit and TeamsKit, unchanged from npm, driven in headless Chromium as a person would:
// Connect -> Cancel on the provider's consent popup -> the gateway's callback posts authFailed ->
// the button shows Error; Reconnect -> Allow -> the gateway's callback -> Connected -> pick two
// channels -> Disconnect; then Connect again with the popup cut off from its opener (the
// components' auth_check polling must finish the job). pytest checks the gateway's storage at
// each checkpoint. Usage: node browser.mjs <config.json>
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

import { checkpoint, launch, loadConfig, log } from "./harness.mjs";

const config = loadConfig();
const gateway = new URL(config.gatewayUrl);
const outputDir = config.screenshotDir;
fs.mkdirSync(outputDir, { recursive: true });

const TIMEOUT = 15_000; // per wait; every step normally takes well under a second
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

// ---- the network: loopback only; the hard-coded provider pages are played by the fakes ------
// SlackKit opens https://slack.com/oauth/v2/authorize and TeamsKit
// https://login.microsoftonline.com/organizations/adminconsent. Those requests (the page and
// its form's POST) are answered with what the fakes answer on loopback; the fakes' redirects
// then take the popup to the gateway's callback, as the real pages would. Anything else that
// is not loopback is aborted and reported (and resolves nowhere: see CHROMIUM_ARGS).
// After the consent, the gateway redirects the popup on to Entra's sign-in at MS_LOGIN_URL:
// routing never sees a redirect, so the browser goes there itself, to the fake Entra over TLS,
// whose certificate (and no other) Chromium is told to accept (launch flags); the fake signs
// the admin in and redirects back to the gateway with a code.
const blocked = [];
const offMachine = []; // every request seen, redirects included (routing sees no redirects)
const PROVIDER_HOSTS = new Set(["slack.com", "login.microsoftonline.com"]);
const routed = { slack: [], microsoft: [], signin: [] };
const gatewayCalls = [];
const pageErrors = [];
const consoleErrors = [];
let severOpener = false; // set for the polling-fallback steps

const HOP_BY_HOP = new Set(["connection", "content-length", "keep-alive", "transfer-encoding"]);

async function route(route) {
  const url = new URL(route.request().url());
  if (url.protocol === "https:" && url.hostname === "slack.com") {
    if (url.pathname !== "/oauth/v2/authorize") return block(route, url);
    return playProviderPage(route, url, config.fakes.slack, routed.slack);
  }
  if (url.protocol === "https:" && url.hostname === "login.microsoftonline.com") {
    if (!url.pathname.endsWith("/adminconsent")) return block(route, url);
    return playProviderPage(route, url, config.fakes.microsoftConsent, routed.microsoft);
  }
  if (!LOOPBACK.has(url.hostname)) return block(route, url);
  return route.continue();
}

async function playProviderPage(route, url, fakeOrigin, record) {
  const request = route.request();
  if (request.method() === "GET") record.push(url);
  const answer = await fetch(`${fakeOrigin}${url.pathname}${url.search}`, {
    method: request.method(),
    headers: request.method() === "POST" ? { "content-type": request.headers()["content-type"] } : {},
    body: request.postDataBuffer() ?? undefined,
    redirect: "manual",
  });
  const headers = {};
  answer.headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name)) headers[name] = value;
  });
  if (severOpener && request.method() === "GET") {
    // What a provider page with Cross-Origin-Opener-Policy does to a popup: the rest of the
    // flow runs in a new browsing context group, so the callback page has no window.opener.
    headers["cross-origin-opener-policy"] = "same-origin";
  }
  const body = Buffer.from(await answer.arrayBuffer());
  return route.fulfill({ status: answer.status, headers, body });
}

function block(route, url) {
  blocked.push(url.href);
  return route.abort("blockedbyclient");
}

// ---- helpers ---------------------------------------------------------------------------
let shot = 0;
async function screenshot(page, name) {
  shot += 1;
  const file = path.join(outputDir, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`  screenshot ${path.basename(file)}`);
}

let current = null;
async function step(name, body) {
  current = name;
  log(name);
  await body();
}

function gatewayResponse(page, method, pathPart) {
  return page.waitForResponse(
    (response) =>
      response.url().startsWith(config.gatewayUrl) &&
      response.request().method() === method &&
      new URL(response.url()).pathname.includes(pathPart),
    { timeout: TIMEOUT },
  );
}

async function expectOptions(page, expected) {
  const options = page.getByRole("option");
  await options.first().waitFor({ timeout: TIMEOUT });
  const names = (await options.allInnerTexts()).map((text) => text.trim());
  assert.deepEqual(names, expected, "the combobox lists exactly what the fake serves");
}

async function pick(page, name, channelDataPath) {
  const saved = gatewayResponse(page, "PUT", channelDataPath);
  await page.getByRole("option", { name, exact: true }).click();
  const response = await saved;
  assert.equal(response.status(), 200, `saving ${name}: ${await response.text()}`);
  await page
    .getByRole("option", { name, exact: true })
    .and(page.locator('[aria-selected="true"]'))
    .waitFor({ timeout: TIMEOUT });
}

// A person closes the popup the polling path leaves open (it now shows the app itself).
async function closeIfOpen(popup) {
  if (!popup.isClosed()) await popup.close();
}

function lastRoutedState(list) {
  const url = list.at(-1);
  return { url, state: JSON.parse(url.searchParams.get("state")) };
}

function authMessages(page) {
  return page.evaluate(() => window.__authMessages);
}

// What the app's onAuthenticationComplete received, as [{ provider, result }] (app/main.jsx).
function authCompletions(page, provider) {
  return page.evaluate(
    (provider) => window.__authCompletions.filter((c) => c.provider === provider),
    provider,
  );
}

// The gateway's callback answers a failed install with its authFailed page and status 400.
function callbackStatuses(provider) {
  const pathname = `/providers/${provider}/authenticate`;
  return gatewayCalls.filter((call) => call.pathname === pathname).map((call) => call.status);
}

// Cancel on the provider's consent page: it sends the popup to the gateway's callback with
// error=access_denied; that page posts authFailed to the opener and closes itself. The pointer
// has left the app for the popup, so the button it clicked is not hovered when the Error one
// takes its place (hovering it reads "Reconnect").
async function cancelConsent(page, popup) {
  await page.mouse.move(0, 0);
  const closed = popup.waitForEvent("close", { timeout: TIMEOUT });
  await popup.getByRole("button", { name: "Cancel" }).click();
  await closed;
}

// The button in its error state reads "Reconnect" while hovered; clicking it opens the popup.
async function reconnectFromError(page, errored, reconnect) {
  await errored.hover();
  await reconnect.and(errored).waitFor({ timeout: TIMEOUT });
  const [popup] = await Promise.all([page.waitForEvent("popup"), reconnect.click()]);
  return popup;
}

// Clicking the connected button revokes access ("ok") and the button turns back to Connect.
async function disconnect(page, connected, connect) {
  const revoked = gatewayResponse(page, "PUT", "/revoke_access");
  await connected.click();
  const response = await revoked;
  assert.equal(response.status(), 200);
  assert.equal(await response.json(), "ok");
  await connect.waitFor({ timeout: TIMEOUT });
}

// Connect with the popup cut off from its opener: no message reaches the app, so only the
// components' auth_check polling can show Connected. Without an opener the callback page
// sends the popup back to the app (redirect_url); the popup is returned there.
async function connectWithoutOpener(page, connect, connected, allowLabel) {
  severOpener = true;
  const before = (await authMessages(page)).length;
  const [popup] = await Promise.all([page.waitForEvent("popup"), connect.click()]);
  await popup.getByRole("button", { name: allowLabel }).click();
  await connected.waitFor({ timeout: TIMEOUT });
  severOpener = false;
  assert.equal((await authMessages(page)).length, before, "no message reached the opener");
  await popup.waitForURL(config.redirectUrl, { timeout: TIMEOUT });
  return popup;
}

// ---- the flows ---------------------------------------------------------------------------
// KnockProvider, given a user object and the default identification strategy, identifies the
// user (PUT /v1/users/{id} with its properties) as soon as the page loads.
async function identifyFlow() {
  const identify = `/v1/users/${encodeURIComponent(config.userId)}`;
  await step("the page identified its user with the gateway", async () => {
    const deadline = Date.now() + TIMEOUT;
    while (!gatewayCalls.some((c) => c.method === "PUT" && c.pathname === identify)) {
      assert.ok(Date.now() < deadline, "KnockProvider never identified the user");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const identified = gatewayCalls.filter((c) => c.method === "PUT" && c.pathname === identify);
    assert.deepEqual(new Set(identified.map((c) => c.status)), new Set([200]));
    await checkpoint("user-identified", { user: config.user });
  });
}

async function slackFlow(page) {
  const section = page.getByTestId("slack");
  const connect = section.getByRole("button", { name: "Connect to Slack" });
  const connected = section.locator(".rsk-connect__button--connected");
  // authFailed -> connectionStatus "error": SlackAuthButton renders the --error button with
  // actionLabel || errorLabel || t("slackError") = "Error", and "Reconnect" while hovered.
  const errored = section.locator(".rsk-connect__button--error");
  const error = section.getByRole("button", { name: "Error", exact: true });
  const reconnect = section.getByRole("button", { name: "Reconnect", exact: true });
  const trigger = section.getByRole("combobox");
  const nonceKey = `knock:slack-auth-nonce:${config.slack.channelId}:${config.userId}`;
  const channelDataPath = `/v1/objects/${config.recipient.collection}/${config.recipient.objectId}/channel_data/${config.slack.channelId}`;

  await step("slack: a tenant without a token shows Connect", async () => {
    await connect.waitFor({ timeout: TIMEOUT });
    await section.getByText("Slack is not connected.").waitFor({ timeout: TIMEOUT });
    assert.equal(await trigger.isDisabled(), true, "no channels to pick while disconnected");
    await screenshot(page, "slack-disconnected");
  });

  let popup;
  let cancelled;
  await step("slack: Connect -> Cancel -> callback posts authFailed (nonce) -> Error", async () => {
    [popup] = await Promise.all([page.waitForEvent("popup"), connect.click()]);
    await popup.getByRole("button", { name: "Cancel" }).waitFor({ timeout: TIMEOUT });
    cancelled = lastRoutedState(routed.slack).state.nonce;
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), nonceKey), cancelled);
    await cancelConsent(page, popup);
    await error.and(errored).waitFor({ timeout: TIMEOUT });
    assert.deepEqual(callbackStatuses("slack"), [400], "the callback rendered authFailed");
    const messages = (await authMessages(page)).filter((m) => m.origin === gateway.origin);
    assert.deepEqual(messages, [
      {
        origin: gateway.origin,
        data: { type: "authFailed", nonce: cancelled, reason: "access_denied" },
      },
    ]);
    // useAuthPostMessageListener: authFailed -> setConnectionStatus("error"),
    // onAuthenticationComplete("authFailed"), and the stored nonce is dropped.
    assert.deepEqual(await authCompletions(page, "slack"), [
      { provider: "slack", result: "authFailed" },
    ]);
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), nonceKey), null);
    // SlackChannelCombobox in the error state: disabled, with slackConnectionErrorExists.
    assert.equal(await trigger.isDisabled(), true, "no channels to pick in the error state");
    await section
      .getByText("Try reconnecting to Slack to find and select channels from your workspace.")
      .waitFor({ timeout: TIMEOUT });
    await checkpoint("slack-cancelled", { nonce: cancelled });
    await screenshot(page, "slack-cancelled-error");
  });

  // The hover's actionLabel outlives the Error button (a status change does not clear it), so the
  // Connected button reads "Reconnect" until the pointer next passes over it: the steps below
  // find it by its class.
  let state;
  await step("slack: Reconnect (the Error button) opens Slack's authorize page again", async () => {
    popup = await reconnectFromError(page, errored, reconnect);
    const allow = popup.getByRole("button", { name: "Allow" });
    await allow.waitFor({ timeout: TIMEOUT });
    const routedTo = lastRoutedState(routed.slack);
    state = routedTo.state;
    assert.equal(routedTo.url.searchParams.get("client_id"), config.slack.clientId);
    assert.equal(routedTo.url.searchParams.get("redirect_uri"), null, "SlackKit sends none");
    assert.deepEqual(
      { ...state, nonce: undefined, user_token: undefined },
      {
        nonce: undefined,
        user_token: undefined,
        redirect_url: config.redirectUrl,
        access_token_object: { object_id: config.tenantId, collection: "$tenants" },
        channel_id: config.slack.channelId,
        public_key: config.publicKey,
      },
    );
    assert.equal(state.user_token, config.userToken);
    assert.notEqual(state.nonce, cancelled, "a fresh nonce for the new attempt");
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), nonceKey), state.nonce);
    await screenshot(popup, "slack-popup-authorize");
  });

  await step("slack: Allow -> callback posts authComplete with the nonce -> Connected", async () => {
    const before = (await authMessages(page)).length;
    const closed = popup.waitForEvent("close", { timeout: TIMEOUT });
    await popup.getByRole("button", { name: "Allow" }).click();
    await closed;
    await connected.waitFor({ timeout: TIMEOUT });
    const messages = (await authMessages(page)).slice(before);
    assert.deepEqual(
      messages.filter((m) => m.origin === gateway.origin),
      [{ origin: gateway.origin, data: { type: "authComplete", nonce: state.nonce } }],
    );
    assert.equal((await authCompletions(page, "slack")).at(-1).result, "authComplete");
    // The postMessage listener (not polling) finished the flow: only it consumes the nonce.
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), nonceKey), null);
    await checkpoint("slack-connected", { nonce: state.nonce });
    await section.getByText("Search channels").waitFor({ timeout: TIMEOUT });
    await screenshot(page, "slack-connected");
  });

  await step("slack: the combobox lists the workspace's channels", async () => {
    await trigger.click();
    await expectOptions(page, config.slack.channelNames);
    await screenshot(page, "slack-combobox-open");
  });

  await step("slack: pick two channels", async () => {
    for (const name of config.slack.pick) await pick(page, name, channelDataPath);
    await page.keyboard.press("Escape");
    await page.getByRole("option").first().waitFor({ state: "detached", timeout: TIMEOUT });
    for (const name of config.slack.pick) {
      await trigger.getByText(name, { exact: true }).waitFor({ timeout: TIMEOUT });
    }
    await checkpoint("slack-picked", { picked: config.slack.pick });
    await screenshot(page, "slack-two-picked");
  });

  await step("slack: after a reload the page shows the same two channels", async () => {
    await page.reload();
    await connected.waitFor({ timeout: TIMEOUT });
    for (const name of config.slack.pick) {
      await trigger.getByText(name, { exact: true }).waitFor({ timeout: TIMEOUT });
    }
  });

  await step("slack: Disconnect revokes the token -> Connect again", async () => {
    await disconnect(page, connected, connect);
    await section.getByText("Slack is not connected.").waitFor({ timeout: TIMEOUT });
    await checkpoint("slack-disconnected");
    await screenshot(page, "slack-disconnected-again");
  });

  await step("slack: with the popup cut off from its opener, polling connects", async () => {
    popup = await connectWithoutOpener(page, connect, connected, "Allow");
    const nonce = lastRoutedState(routed.slack).state.nonce;
    assert.equal(
      await page.evaluate((key) => sessionStorage.getItem(key), nonceKey),
      nonce,
      "the listener never saw a message, so the nonce is still stored",
    );
    await screenshot(popup, "slack-popup-without-opener");
    await closeIfOpen(popup);
    await checkpoint("slack-reconnected");
    await screenshot(page, "slack-connected-by-polling");
  });
}

async function teamsFlow(page) {
  const section = page.getByTestId("teams");
  const connect = section.getByRole("button", { name: "Connect to Microsoft Teams" });
  const connected = section.locator(".rtk-connect__button--connected");
  // MsTeamsAuthButton's error state: the --error button, "Error" (t("msTeamsError")),
  // "Reconnect" while hovered.
  const errored = section.locator(".rtk-connect__button--error");
  const error = section.getByRole("button", { name: "Error", exact: true });
  const reconnect = section.getByRole("button", { name: "Reconnect", exact: true });
  const teamTrigger = section.getByRole("combobox").nth(0);
  const channelTrigger = section.getByRole("combobox").nth(1);
  const channelDataPath = `/v1/objects/${config.recipient.collection}/${config.recipient.objectId}/channel_data/${config.teams.channelId}`;
  const redirectUri = `${config.gatewayUrl}/providers/ms-teams/authenticate`;

  await step("teams: a tenant without a tenant id shows Connect", async () => {
    await connect.waitFor({ timeout: TIMEOUT });
    assert.equal(await teamTrigger.isDisabled(), true);
    assert.equal(await channelTrigger.isDisabled(), true);
    await screenshot(page, "teams-disconnected");
  });

  let popup;
  await step("teams: Connect -> Cancel -> callback posts authFailed -> Error", async () => {
    [popup] = await Promise.all([page.waitForEvent("popup"), connect.click()]);
    await popup.getByRole("button", { name: "Cancel" }).waitFor({ timeout: TIMEOUT });
    const before = (await authMessages(page)).length;
    await cancelConsent(page, popup);
    await error.and(errored).waitFor({ timeout: TIMEOUT });
    assert.deepEqual(callbackStatuses("ms-teams"), [400], "the callback rendered authFailed");
    const messages = (await authMessages(page)).slice(before);
    assert.deepEqual(messages, [
      { origin: gateway.origin, data: { type: "authFailed", reason: "access_denied" } },
    ]);
    assert.deepEqual(await authCompletions(page, "ms-teams"), [
      { provider: "ms-teams", result: "authFailed" },
    ]);
    assert.equal(await teamTrigger.isDisabled(), true);
    assert.equal(await channelTrigger.isDisabled(), true);
    await section
      .getByText("Try reconnecting to Microsoft Teams to find and select channels from your teams.")
      .waitFor({ timeout: TIMEOUT });
    await checkpoint("teams-cancelled");
    await screenshot(page, "teams-cancelled-error");
  });

  await step("teams: Reconnect (the Error button) opens the admin-consent page again", async () => {
    popup = await reconnectFromError(page, errored, reconnect);
    await popup.getByRole("button", { name: "Accept" }).waitFor({ timeout: TIMEOUT });
    const { url, state } = lastRoutedState(routed.microsoft);
    assert.equal(url.pathname, "/organizations/adminconsent");
    assert.equal(url.searchParams.get("client_id"), config.teams.clientId);
    assert.equal(url.searchParams.get("redirect_uri"), redirectUri);
    assert.deepEqual(
      { ...state, user_token: undefined },
      {
        user_token: undefined,
        redirect_url: config.redirectUrl,
        ms_teams_tenant_object: { object_id: config.tenantId, collection: "$tenants" },
        channel_id: config.teams.channelId,
        public_key: config.publicKey,
      },
    );
    await screenshot(popup, "teams-popup-consent");
  });

  await step("teams: Accept -> callback posts authComplete -> Connected", async () => {
    const before = (await authMessages(page)).length;
    const closed = popup.waitForEvent("close", { timeout: TIMEOUT });
    await popup.getByRole("button", { name: "Accept" }).click();
    await closed;
    await connected.waitFor({ timeout: TIMEOUT });
    const messages = (await authMessages(page)).slice(before);
    assert.deepEqual(messages, [{ origin: gateway.origin, data: { type: "authComplete" } }]);
    assert.equal((await authCompletions(page, "ms-teams")).at(-1).result, "authComplete");
    // On the way, the gateway had the admin sign in at the directory that consented.
    const signin = routed.signin.at(-1);
    assert.equal(signin.pathname, `/${config.teams.directory}/oauth2/v2.0/authorize`);
    assert.equal(signin.searchParams.get("client_id"), config.teams.clientId);
    assert.equal(signin.searchParams.get("redirect_uri"), redirectUri);
    assert.equal(signin.searchParams.get("scope"), "openid");
    await checkpoint("teams-connected");
    await screenshot(page, "teams-connected");
  });

  await step("teams: pick a team, then two of its channels", async () => {
    await teamTrigger.click();
    await expectOptions(page, config.teams.teamNames);
    await screenshot(page, "teams-team-combobox-open");
    await page.getByRole("option", { name: config.teams.team, exact: true }).click();
    await teamTrigger.getByText(config.teams.team).waitFor({ timeout: TIMEOUT });
    // The team list stays mounted while it animates out, then hands the focus back to its
    // trigger: a click on the channel trigger before then opens a list that this focus move
    // closes again. Look until the team list is gone first, as a person would.
    await page.getByRole("option").first().waitFor({ state: "hidden", timeout: TIMEOUT });
    await channelTrigger.click();
    await expectOptions(page, config.teams.channelNames);
    await screenshot(page, "teams-combobox-open");
    for (const name of config.teams.pick) await pick(page, name, channelDataPath);
    await page.keyboard.press("Escape");
    await page.getByRole("option").first().waitFor({ state: "detached", timeout: TIMEOUT });
    for (const name of config.teams.pick) {
      await channelTrigger.getByText(name, { exact: true }).waitFor({ timeout: TIMEOUT });
    }
    await checkpoint("teams-picked", { picked: config.teams.pick });
    await screenshot(page, "teams-two-picked");
  });

  await step("teams: Disconnect removes the tenant id -> Connect again", async () => {
    await disconnect(page, connected, connect);
    await checkpoint("teams-disconnected");
    await screenshot(page, "teams-disconnected-again");
  });

  await step("teams: with the popup cut off from its opener, polling connects", async () => {
    popup = await connectWithoutOpener(page, connect, connected, "Accept");
    await closeIfOpen(popup);
    await checkpoint("teams-reconnected");
    await screenshot(page, "teams-connected-by-polling");
  });
}

// Statuses the components meet on these flows: auth_check 403 "not set" while disconnected,
// 404 for channel data the recipient does not have yet, 429 from Knock's per-user rate
// limits (5/s for provider calls; two app pages open at once exceed it; the client retries
// after Retry-After), and the callback's 400 authFailed page for each Cancel (counted
// separately). Anything else is a failure.
const CALLBACKS = new Set(["/providers/slack/authenticate", "/providers/ms-teams/authenticate"]);
function expectedStatus(method, pathname, status) {
  if (status < 400 || status === 429) return true;
  if (status === 400 && method === "GET" && CALLBACKS.has(pathname)) return true;
  if (status === 403 && method === "GET" && pathname.endsWith("/auth_check")) return true;
  if (status === 404 && method === "GET" && pathname.includes("/channel_data/")) return true;
  return false;
}

function unexpectedGatewayCalls() {
  return gatewayCalls.filter(({ method, pathname, status }) =>
    !expectedStatus(method, pathname, status),
  );
}

// Chromium logs every failed load to the console ("Failed to load resource: … status of 403")
// with the resource's URL but not its method; those of the statuses above are expected.
// Anything else logged as an error (the Knock client's own console.error, say) is not.
function unexpectedConsoleErrors() {
  return consoleErrors.filter(({ text, url }) => {
    const status = /^Failed to load resource: .*status of (\d+)/.exec(text)?.[1];
    if (!status || !url) return true;
    const { pathname } = new URL(url);
    return !["GET", "PUT"].some((method) => expectedStatus(method, pathname, Number(status)));
  });
}

// ---- main --------------------------------------------------------------------------------
const started = performance.now();
const browser = await launch([
  `--ignore-certificate-errors-spki-list=${config.fakes.microsoftLoginSpki}`,
]);
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
  context.setDefaultTimeout(TIMEOUT);
  await context.route("**/*", route);
  context.on("request", (request) => {
    const url = new URL(request.url());
    if (url.origin === config.fakes.microsoftLogin) routed.signin.push(url);
    const remote = !LOOPBACK.has(url.hostname) && !PROVIDER_HOSTS.has(url.hostname);
    if (url.protocol.startsWith("http") && remote) offMachine.push(url.href);
  });
  context.on("response", (response) => {
    const url = new URL(response.url());
    if (url.origin !== gateway.origin) return;
    const method = response.request().method();
    if (method === "OPTIONS") return;
    gatewayCalls.push({ method, pathname: url.pathname, status: response.status() });
  });
  context.on("page", (page) => {
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      consoleErrors.push({ text: message.text(), url: message.location().url });
    });
  });
  const page = await context.newPage();
  await page.goto(`${config.appUrl}/settings/integrations`);
  await identifyFlow();
  await slackFlow(page);
  await teamsFlow(page);

  current = "the browser only talked to loopback and behaved";
  assert.deepEqual(blocked, [], "requests that would have left the machine");
  assert.deepEqual(offMachine, [], "requests (or redirects) to other hosts");
  assert.equal(routed.slack.length, 3, "Slack's authorize page was opened three times");
  assert.equal(routed.microsoft.length, 3, "Microsoft's consent page was opened three times");
  assert.equal(routed.signin.length, 2, "and its sign-in twice: after each Accept");
  assert.deepEqual(callbackStatuses("slack"), [400, 200, 200], "Cancel, Allow, Allow");
  // Teams: each Accept reaches the callback twice: 302 on to the sign-in, then 200.
  assert.deepEqual(
    callbackStatuses("ms-teams"),
    [400, 302, 200, 302, 200],
    "Cancel, Accept (consent, sign-in), Accept (consent, sign-in)",
  );
  assert.deepEqual(unexpectedGatewayCalls(), [], "unexpected gateway error statuses");
  assert.deepEqual(pageErrors, [], "uncaught errors in the pages");
  assert.deepEqual(unexpectedConsoleErrors(), [], "errors logged to the console");
  await context.close();
} catch (error) {
  failed = true;
  process.stdout.write(`\nFAILED at step: ${current}\n${error.stack || error}\n`);
  process.stdout.write(`gateway calls: ${JSON.stringify(gatewayCalls, null, 1)}\n`);
  process.stdout.write(`blocked: ${JSON.stringify(blocked)}  page errors: ${JSON.stringify(pageErrors)}\n`);
  process.stdout.write(`console errors: ${JSON.stringify(consoleErrors, null, 1)}\n`);
  for (const ctx of browser.contexts()) {
    for (const [index, page] of ctx.pages().entries()) {
      const file = path.join(outputDir, `FAILED-page-${index}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      process.stdout.write(`screenshot of the failure: ${file}\n`);
    }
  }
} finally {
  await browser.close();
}
log(`browser flows ${failed ? "FAILED" : "passed"} in ${((performance.now() - started) / 1000).toFixed(1)}s`);
process.exit(failed ? 1 : 0);
