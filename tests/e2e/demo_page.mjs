// The demo page of `provider-gateway demo`, clicked through in headless Chromium: both
// providers' consent popups (the bundled simulators), channel picks, Disconnect.
// Usage: node demo_page.mjs <demo URL> <screenshot dir>
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

import { launch, log } from "./harness.mjs";

const [demoUrl, outputDir] = process.argv.slice(2);
assert.ok(demoUrl && outputDir, "usage: node demo_page.mjs <demo URL> <screenshot dir>");
fs.mkdirSync(outputDir, { recursive: true });
const TIMEOUT = 15_000;

const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
context.setDefaultTimeout(TIMEOUT);
const problems = [];
context.on("request", (request) => {
  if (new URL(request.url()).hostname !== "127.0.0.1") problems.push(`left loopback: ${request.url()}`);
});
const page = await context.newPage();
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
let shot = 0;
const screenshot = (name) =>
  page.screenshot({ path: path.join(outputDir, `${String(++shot).padStart(2, "0")}-${name}.png`), fullPage: true });

async function status(panel, text) {
  await panel.locator(".status").filter({ hasText: new RegExp(`^${text}$`) }).waitFor();
}

async function connect(panel, button, allowLabel) {
  const [popup] = await Promise.all([page.waitForEvent("popup"), panel.getByRole("button", { name: button }).click()]);
  await popup.getByRole("button", { name: allowLabel }).waitFor();
  await popup.screenshot({ path: path.join(outputDir, `${String(++shot).padStart(2, "0")}-consent.png`) });
  // Listen before clicking: the page closes it on authComplete, which can beat a late listener.
  const closed = popup.isClosed() ? Promise.resolve() : popup.waitForEvent("close");
  await popup.getByRole("button", { name: allowLabel }).click();
  await closed;
}

async function stored() {
  return JSON.parse(await page.locator("#stored").textContent());
}

try {
  await page.goto(demoUrl);
  const slack = page.locator("#slack");
  const teams = page.locator("#ms-teams");
  await status(slack, "Not connected");
  await status(teams, "Not connected");
  await screenshot("disconnected");

  log("slack: the consent popup closed without finishing");
  const [abandoned] = await Promise.all([
    page.waitForEvent("popup"),
    slack.getByRole("button", { name: "Connect to Slack" }).click(),
  ]);
  await abandoned.getByRole("button", { name: "Allow" }).waitFor();
  await status(slack, "Waiting for the consent screen…");
  await abandoned.close();
  await status(slack, "Not connected"); // the page recovers: Connect works again
  await screenshot("popup-closed");

  log("slack: connect");
  await connect(slack, "Connect to Slack", "Allow");
  await status(slack, "Connected");
  await slack.getByLabel("#alerts").check();
  await page.locator("#stored").filter({ hasText: "C0DEMO0003" }).waitFor();
  await slack.getByLabel("leadership (private)").check();
  await page.locator("#stored").filter({ hasText: "C0DEMO0007" }).waitFor();
  assert.deepEqual((await stored()).slack.connections, [{ channel_id: "C0DEMO0003" }, { channel_id: "C0DEMO0007" }]);
  assert.equal((await stored()).slack.token, undefined, "a public-key caller never sees the token");
  await screenshot("slack-picked");

  log("teams: connect");
  await connect(teams, "Connect to Microsoft Teams", "Accept");
  await status(teams, "Connected");
  await teams.getByLabel("Deploys").check();
  await page.locator("#stored").filter({ hasText: "ms_teams_channel_id" }).waitFor();
  await teams.locator("select").selectOption({ label: "Support" });
  await teams.getByLabel("VIP").waitFor();
  await teams.getByLabel("VIP").check();
  await page.waitForFunction(() => (JSON.parse(document.getElementById("stored").textContent)["ms-teams"]?.connections || []).length === 2);
  await screenshot("teams-picked");

  log("slack: disconnect");
  await slack.getByRole("button", { name: "Disconnect" }).click();
  await status(slack, "Not connected");
  await screenshot("slack-disconnected");

  log("reload: the page reads its state back from the gateway");
  await page.reload();
  await status(slack, "Not connected");
  await status(teams, "Connected");
  await teams.getByLabel("Deploys").waitFor();
  assert.equal(await teams.getByLabel("Deploys").isChecked(), true);
  await screenshot("reloaded");
} finally {
  await browser.close();
}
assert.deepEqual(problems, []);
log("demo page: ok");
