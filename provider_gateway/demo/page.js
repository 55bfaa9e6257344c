// The demo page: the calls SlackKit and TeamsKit make, without React, against this gateway.
"use strict";

const config = JSON.parse(document.getElementById("demo-config").textContent);
const tenant = { object_id: config.tenant, collection: "$tenants" };

async function api(method, path, params = {}, body = undefined) {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(query ? `${path}?${query}` : path, {
    method,
    headers: {
      Authorization: `Bearer ${config.public_key}`,
      "X-Knock-User-Token": config.user_token,
      "Content-Type": "application/json",
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((parsed && parsed.message) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return parsed;
}

function channelDataPath(channelId) {
  return `/v1/objects/${encodeURIComponent(tenant.collection)}/${encodeURIComponent(tenant.object_id)}/channel_data/${channelId}`;
}

async function readConnections(channelId) {
  try {
    const stored = await api("GET", channelDataPath(channelId));
    return stored.data.connections || [];
  } catch (error) {
    if (error.status === 404) return [];
    throw error;
  }
}

async function writeConnections(channelId, connections) {
  await api("PUT", channelDataPath(channelId), {}, { data: { connections } });
  await showStored();
}

async function showStored() {
  const stored = {};
  for (const [name, channelId] of [["slack", config.slack.channel_id], ["ms-teams", config.teams.channel_id]]) {
    try {
      stored[name] = (await api("GET", channelDataPath(channelId))).data;
    } catch (error) {
      if (error.status !== 404) throw error;
    }
  }
  document.getElementById("stored").textContent = JSON.stringify(stored, null, 2);
}

// How often, and for how long after it closed, the page looks for the popup's message.
const POPUP_POLL_MS = 300;
const POPUP_GRACE_MS = 1000;

// Opens the provider's consent screen in a popup and resolves with the callback page's
// message, or {type: "closed"} when the popup was closed (or never opened) without one.
function authorizeInPopup(url, nonce) {
  return new Promise((resolve) => {
    const popup = window.open(url, "_blank", "width=600,height=720");
    let closedAt = null;
    const watch = window.setInterval(() => {
      if (popup && !popup.closed) return;
      // The callback page posts, then closes itself: give its message time to arrive.
      closedAt = closedAt ?? Date.now();
      if (Date.now() - closedAt >= POPUP_GRACE_MS) finish({ type: "closed", blocked: !popup });
    }, POPUP_POLL_MS);
    function finish(message) {
      window.clearInterval(watch);
      window.removeEventListener("message", onMessage);
      resolve(message);
    }
    function onMessage(event) {
      const message = event.data || {};
      if (event.origin !== window.location.origin) return;
      if (message.type !== "authComplete" && message.type !== "authFailed") return;
      if (nonce && message.nonce !== nonce) return;
      if (popup && !popup.closed) popup.close();
      finish(message);
    }
    window.addEventListener("message", onMessage);
  });
}

function checkbox(label, checked, onChange) {
  const item = document.createElement("li");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = checked;
  box.addEventListener("change", () => onChange(box.checked));
  const text = document.createElement("label");
  text.append(box, ` ${label}`);
  item.append(text);
  return item;
}

class ProviderPanel {
  constructor(root) {
    this.root = root;
    this.status = root.querySelector(".status");
    this.connectButton = root.querySelector(".connect");
    this.disconnectButton = root.querySelector(".disconnect");
    this.picker = root.querySelector(".picker");
    this.choices = root.querySelector(".choices");
    this.connectButton.addEventListener("click", () => this.run(() => this.connect()));
    this.disconnectButton.addEventListener("click", () => this.run(() => this.disconnect()));
  }

  async run(action) {
    try {
      await action();
    } catch (error) {
      this.show("error", `Error: ${error.message}`);
    }
  }

  show(state, text) {
    this.status.textContent = text;
    this.status.className = `status ${state}`;
    this.root.dataset.state = state;
    const connected = state === "connected";
    this.connectButton.hidden = connected;
    this.connectButton.disabled = state === "connecting"; // one consent popup at a time
    this.disconnectButton.hidden = !connected;
    this.picker.hidden = !connected;
  }

  async refresh() {
    if (await this.isConnected()) {
      this.show("connected", "Connected");
      await this.loadPicker();
    } else {
      this.show("disconnected", "Not connected");
    }
    await showStored();
  }

  // As useSlackConnectionStatus/useMsTeamsConnectionStatus read auth_check: a 4xx saying the
  // token or tenant is "not set." means not connected yet; anything else is an error.
  async isConnected() {
    try {
      const check = await api("GET", `${this.base}/auth_check`, this.tenantParams());
      return Boolean(check.connection && check.connection.ok);
    } catch (error) {
      if (error.status >= 400 && error.status < 500 && error.message.endsWith(" not set.")) return false;
      throw error;
    }
  }

  async connect() {
    this.show("connecting", "Waiting for the consent screen…");
    const message = await authorizeInPopup(...this.authorizeUrl());
    if (message.type === "authFailed") {
      this.show("error", `Could not connect (${message.reason || "cancelled"})`);
      return;
    }
    if (message.type === "closed" && message.blocked) {
      this.show("error", "The browser blocked the consent popup: allow popups for this page");
      return;
    }
    // Finished, or closed without a word: either way the gateway knows whether it connected.
    await this.refresh();
  }

  async disconnect() {
    await api("PUT", `${this.base}/revoke_access`, this.tenantParams());
    this.choices.replaceChildren();
    await this.refresh();
  }
}

class SlackPanel extends ProviderPanel {
  constructor() {
    super(document.getElementById("slack"));
    this.base = `/v1/providers/slack/${config.slack.channel_id}`;
  }

  tenantParams() {
    return { "access_token_object[object_id]": tenant.object_id, "access_token_object[collection]": tenant.collection };
  }

  authorizeUrl() {
    const nonce = crypto.randomUUID();
    const state = JSON.stringify({
      nonce,
      redirect_url: `${window.location.origin}/`,
      access_token_object: tenant,
      channel_id: config.slack.channel_id,
      public_key: config.public_key,
      user_token: config.user_token,
    });
    const query = new URLSearchParams({ state, client_id: config.slack.client_id, scope: config.slack.scope });
    return [`${config.slack.authorize_url}?${query}`, nonce];
  }

  async loadPicker() {
    const channels = [];
    let cursor = "";
    do {
      const params = { ...this.tenantParams(), "query_options[limit]": "200", "query_options[types]": "private_channel,public_channel" };
      if (cursor) params["query_options[cursor]"] = cursor;
      const page = await api("GET", `${this.base}/channels`, params);
      channels.push(...page.slack_channels);
      cursor = page.next_cursor;
    } while (cursor);
    const chosen = new Set((await readConnections(config.slack.channel_id)).map((c) => c.channel_id));
    this.choices.replaceChildren(
      ...channels.map((channel) =>
        checkbox(channel.is_private ? `${channel.name} (private)` : `#${channel.name}`, chosen.has(channel.id), (on) => {
          if (on) chosen.add(channel.id);
          else chosen.delete(channel.id);
          this.run(() => writeConnections(config.slack.channel_id, [...chosen].map((id) => ({ channel_id: id }))));
        }),
      ),
    );
  }
}

class TeamsPanel extends ProviderPanel {
  constructor() {
    super(document.getElementById("ms-teams"));
    this.base = `/v1/providers/ms-teams/${config.teams.channel_id}`;
    this.teamSelect = this.root.querySelector(".teams");
    this.teamSelect.addEventListener("change", () => this.run(() => this.loadChannels()));
  }

  tenantParams() {
    return { "ms_teams_tenant_object[object_id]": tenant.object_id, "ms_teams_tenant_object[collection]": tenant.collection };
  }

  authorizeUrl() {
    const state = JSON.stringify({
      redirect_url: `${window.location.origin}/`,
      ms_teams_tenant_object: tenant,
      channel_id: config.teams.channel_id,
      public_key: config.public_key,
      user_token: config.user_token,
    });
    const query = new URLSearchParams({ state, client_id: config.teams.client_id, redirect_uri: config.teams.redirect_uri });
    return [`${config.teams.consent_url}?${query}`, null];
  }

  async loadPicker() {
    const teams = [];
    let skiptoken = "";
    do {
      const params = { ...this.tenantParams() };
      if (skiptoken) params["query_options[$skiptoken]"] = skiptoken;
      const page = await api("GET", `${this.base}/teams`, params);
      teams.push(...page.ms_teams_teams);
      skiptoken = page.skip_token;
    } while (skiptoken);
    this.teamSelect.replaceChildren(
      ...teams.map((team) => new Option(team.displayName, team.id)),
    );
    await this.loadChannels();
  }

  async loadChannels() {
    const teamId = this.teamSelect.value;
    if (!teamId) return;
    const page = await api("GET", `${this.base}/channels`, { ...this.tenantParams(), team_id: teamId });
    const connections = await readConnections(config.teams.channel_id);
    const key = (c) => `${c.ms_teams_team_id} ${c.ms_teams_channel_id}`;
    const chosen = new Map(connections.map((c) => [key(c), c]));
    this.choices.replaceChildren(
      ...page.ms_teams_channels.map((channel) => {
        const connection = { ms_teams_team_id: teamId, ms_teams_channel_id: channel.id };
        return checkbox(channel.displayName, chosen.has(key(connection)), (on) => {
          if (on) chosen.set(key(connection), connection);
          else chosen.delete(key(connection));
          this.run(() => writeConnections(config.teams.channel_id, [...chosen.values()]));
        });
      }),
    );
  }
}

document.getElementById("tenant").textContent = `${tenant.collection}/${tenant.object_id}`;
for (const panel of [new SlackPanel(), new TeamsPanel()]) panel.run(() => panel.refresh());
