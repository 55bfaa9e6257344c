// @knocklabs/client (unchanged, from npm) against the gateway: every provider method, every
// channel-data method and the users methods (identify, get) the installed client has, as a
// browser app would call them (pk_ key and a user token), checking what comes back and the
// wire form it sends (bracket query keys).
// pytest connects Slack and Teams for the tenant first. Run: E2E_CONFIG=<config.json> node --test client.test.mjs
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";

import Knock from "@knocklabs/client";

const config = JSON.parse(fs.readFileSync(process.env.E2E_CONFIG, "utf8"));
const tenant = config.tenantId;
const slackChannel = config.slack.channelId;
const teamsChannel = config.teams.channelId;
const recipient = { collection: config.recipient.collection, objectId: config.recipient.objectId };

// Record what the client puts on the wire (it uses the global fetch, bound when first used).
const sent = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init = {}) => {
  sent.push({ url: new URL(String(input)), method: init.method, headers: init.headers });
  return realFetch(input, init);
};

const knock = new Knock(config.publicKey, { host: config.gatewayUrl });
knock.authenticate({ id: config.userId }, config.userToken, { identificationStrategy: "skip" });

function lastSent(method, pathEnd) {
  const request = sent.findLast((r) => r.method === method && r.url.pathname.endsWith(pathEnd));
  assert.ok(request, `no ${method} …${pathEnd} was sent`);
  return request;
}

function query(request) {
  return Object.fromEntries(request.url.searchParams);
}

test("requests carry Knock's headers: pk_ key, user token, client name", async () => {
  await knock.slack.authCheck({ tenant, knockChannelId: slackChannel });
  const { headers } = lastSent("GET", "/auth_check");
  assert.equal(headers.Authorization, `Bearer ${config.publicKey}`);
  assert.equal(headers["X-Knock-User-Token"], config.userToken);
  assert.match(headers["X-Knock-Client"], /^Knock\/ClientJS /);
});

test("slack.authCheck: connected, tenant sent as bracket keys", async () => {
  const result = await knock.slack.authCheck({ tenant, knockChannelId: slackChannel });
  assert.equal(result.connection.ok, true);
  const request = lastSent("GET", `/v1/providers/slack/${slackChannel}/auth_check`);
  assert.deepEqual(query(request), {
    "access_token_object[object_id]": tenant,
    "access_token_object[collection]": "$tenants",
    channel_id: slackChannel,
  });
});

test("slack.getChannels: pages of 2 on next_cursor, every channel once", async () => {
  const names = [];
  let cursor;
  let pages = 0;
  do {
    const page = await knock.slack.getChannels({
      tenant,
      knockChannelId: slackChannel,
      queryOptions: { limit: 2, cursor, types: "public_channel,private_channel" },
    });
    pages += 1;
    assert.ok(page.slack_channels.length <= 2);
    for (const channel of page.slack_channels) {
      assert.deepEqual(Object.keys(channel).sort(), [
        "context_team_id",
        "id",
        "is_im",
        "is_private",
        "name",
      ]);
      names.push(channel.name);
    }
    cursor = page.next_cursor || undefined;
  } while (cursor);
  assert.deepEqual(names.sort(), config.slack.channelNames);
  assert.equal(pages, Math.ceil(config.slack.channelNames.length / 2));
  const last = query(lastSent("GET", `/v1/providers/slack/${slackChannel}/channels`));
  assert.equal(last["query_options[limit]"], "2");
  assert.equal(last["query_options[types]"], "public_channel,private_channel");
  assert.ok(last["query_options[cursor]"], "later pages send the cursor as a bracket key");
});

test("msTeams.authCheck: connected to the consented directory", async () => {
  const result = await knock.msTeams.authCheck({ tenant, knockChannelId: teamsChannel });
  assert.equal(result.connection.ok, true);
  assert.equal(result.connection.ms_teams_tenant_id, config.teams.directory);
  assert.deepEqual(query(lastSent("GET", `/v1/providers/ms-teams/${teamsChannel}/auth_check`)), {
    "ms_teams_tenant_object[object_id]": tenant,
    "ms_teams_tenant_object[collection]": "$tenants",
    channel_id: teamsChannel,
  });
});

test("msTeams.getTeams: $top 2, then the skip_token, every team once", async () => {
  const names = [];
  let skiptoken;
  do {
    const page = await knock.msTeams.getTeams({
      tenant,
      knockChannelId: teamsChannel,
      queryOptions: { $top: 2, $skiptoken: skiptoken },
    });
    names.push(...page.ms_teams_teams.map((team) => team.displayName));
    skiptoken = page.skip_token || undefined;
  } while (skiptoken);
  assert.deepEqual(names.sort(), config.teams.teamNames);
  const last = query(lastSent("GET", `/v1/providers/ms-teams/${teamsChannel}/teams`));
  assert.equal(last["query_options[$top]"], "2");
  assert.ok(last["query_options[$skiptoken]"]);
});

test("msTeams.getChannels: the default view, $filter and $select", async () => {
  const input = { tenant, knockChannelId: teamsChannel, teamId: config.teams.teamId };
  const all = await knock.msTeams.getChannels(input);
  assert.deepEqual(all.ms_teams_channels.map((c) => c.displayName).sort(), config.teams.channelNames);
  const general = await knock.msTeams.getChannels({
    ...input,
    queryOptions: { $filter: "displayName eq 'General'", $select: "id,displayName" },
  });
  assert.equal(general.ms_teams_channels.length, 1);
  assert.deepEqual(Object.keys(general.ms_teams_channels[0]).sort(), ["displayName", "id"]);
  assert.deepEqual(query(lastSent("GET", `/v1/providers/ms-teams/${teamsChannel}/channels`)), {
    "ms_teams_tenant_object[object_id]": tenant,
    "ms_teams_tenant_object[collection]": "$tenants",
    team_id: config.teams.teamId,
    "query_options[$filter]": "displayName eq 'General'",
    "query_options[$select]": "id,displayName",
  });
});

test("objects.setChannelData / getChannelData: the ChannelData envelope", async () => {
  const connections = config.slack.pickIds.map((id) => ({ channel_id: id }));
  const set = await knock.objects.setChannelData({
    ...recipient,
    channelId: slackChannel,
    data: { connections },
  });
  assert.deepEqual(set, {
    __typename: "ChannelData",
    channel_id: slackChannel,
    data: { connections },
  });
  const request = lastSent("PUT", `/channel_data/${slackChannel}`);
  assert.equal(
    request.url.pathname,
    `/v1/objects/${recipient.collection}/${recipient.objectId}/channel_data/${slackChannel}`,
  );
  const got = await knock.objects.getChannelData({ ...recipient, channelId: slackChannel });
  assert.deepEqual(got, set);
});

test("objects.getChannelData: refused without a grant, missing data is an error", async () => {
  // The user token grants slack/channels_read on the tenant, not channel_data/read: the
  // tenant's token stays out of the browser's reach.
  await assert.rejects(
    knock.objects.getChannelData({ collection: "$tenants", objectId: tenant, channelId: slackChannel }),
    /status code 403/,
  );
  // No Teams data on the recipient yet.
  await assert.rejects(
    knock.objects.getChannelData({ ...recipient, channelId: teamsChannel }),
    /status code 404/,
  );
});

test("user.setChannelData / getChannelData: the user's own channel data", async () => {
  const channelData = { connections: [{ user_id: "U0E2EUSER" }] };
  const set = await knock.user.setChannelData({ channelId: slackChannel, channelData });
  assert.deepEqual(set, { __typename: "ChannelData", channel_id: slackChannel, data: channelData });
  assert.equal(
    lastSent("PUT", `/channel_data/${slackChannel}`).url.pathname,
    `/v1/users/${config.userId}/channel_data/${slackChannel}`,
  );
  assert.deepEqual(await knock.user.getChannelData({ channelId: slackChannel }), set);
});

test("user.identify / user.get: the user's own record, merged Knock's way", async () => {
  const identified = await knock.user.identify({ name: "Alan Grant", plan: "paleontology" });
  const request = lastSent("PUT", `/v1/users/${config.userId}`);
  assert.equal(request.headers["X-Knock-User-Token"], config.userToken);
  assert.equal(identified.__typename, "User");
  assert.equal(identified.id, config.userId);
  assert.equal(identified.name, "Alan Grant");
  assert.equal(identified.plan, "paleontology"); // custom properties at the top level
  assert.equal(identified.created_at, null);
  assert.ok(!Number.isNaN(Date.parse(identified.updated_at)));

  const merged = await knock.user.identify({ email: "alan@isla-nublar.test", plan: null });
  assert.equal(merged.name, "Alan Grant", "what the second identify did not name is kept");
  assert.equal(merged.email, "alan@isla-nublar.test");
  assert.equal("plan" in merged, false, "null removes a property");
  assert.deepEqual(await knock.user.get(), merged);
});

test("user.identify: refusals reach the caller (preferences are not kept here)", async () => {
  await assert.rejects(
    knock.user.identify({ preferences: { default: { channel_types: { email: true } } } }),
    /status code 422/,
  );
  await assert.rejects(knock.user.identify({ timezone: "Mars/Olympus_Mons" }), /status code 422/);
});

test("authenticate with a user object identifies it (the default strategy)", async () => {
  const app = new Knock(config.publicKey, { host: config.gatewayUrl });
  app.authenticate({ id: config.userId, name: "Identified Inline" }, config.userToken);
  const deadline = Date.now() + 10_000;
  let user = await knock.user.get();
  while (user.name !== "Identified Inline" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    user = await knock.user.get();
  }
  assert.equal(user.name, "Identified Inline");
  assert.equal(user.email, "alan@isla-nublar.test", "an inline identify merges too");
  app.teardown();
});

test("slack.revokeAccessToken: the bare \"ok\", then auth_check says not set", async () => {
  assert.equal(await knock.slack.revokeAccessToken({ tenant, knockChannelId: slackChannel }), "ok");
  assert.deepEqual(query(lastSent("PUT", `/v1/providers/slack/${slackChannel}/revoke_access`)), {
    "access_token_object[object_id]": tenant,
    "access_token_object[collection]": "$tenants",
    channel_id: slackChannel,
  });
  const result = await knock.slack.authCheck({ tenant, knockChannelId: slackChannel });
  assert.equal(result.response.status, 403);
  assert.equal(result.response.data.message, "Access token not set.");
});

test("msTeams.revokeAccessToken: the bare \"ok\", then auth_check says not set", async () => {
  assert.equal(await knock.msTeams.revokeAccessToken({ tenant, knockChannelId: teamsChannel }), "ok");
  assert.deepEqual(query(lastSent("PUT", `/v1/providers/ms-teams/${teamsChannel}/revoke_access`)), {
    "ms_teams_tenant_object[object_id]": tenant,
    "ms_teams_tenant_object[collection]": "$tenants",
    channel_id: teamsChannel,
  });
  const result = await knock.msTeams.authCheck({ tenant, knockChannelId: teamsChannel });
  assert.equal(result.response.status, 403);
  assert.equal(result.response.data.message, "Microsoft Teams tenant ID not set.");
});

test("every request went to the gateway", () => {
  for (const request of sent) assert.equal(request.url.origin, config.gatewayUrl);
});
