// What the node scripts share: their config, the checkpoint handshake with pytest, Chromium.
import fs from "node:fs";
import readline from "node:readline";

import { chromium } from "playwright-core";

export const CHROMIUM = process.env.E2E_CHROMIUM || "/usr/bin/chromium";

// The closed network refuses Chromium's own background connections; these flags stop them.
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
  // Belt and braces: nothing but loopback resolves, whatever a page asks for. Requests to
  // slack.com / login.microsoftonline.com never reach DNS: they are answered by routing.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
];

export function loadConfig() {
  const path = process.argv[2] || process.env.E2E_CONFIG;
  if (!path) throw new Error("usage: node <script> <config.json> (or E2E_CONFIG=...)");
  return JSON.parse(fs.readFileSync(path, "utf8"));
}

export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}

const lines = [];
const waiters = [];
let stdin = null;

function nextLine() {
  if (!stdin) {
    stdin = readline.createInterface({ input: process.stdin });
    stdin.on("line", (line) => (waiters.length ? waiters.shift()(line) : lines.push(line)));
    stdin.on("close", () => waiters.splice(0).forEach((resolve) => resolve("closed")));
  }
  return lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r));
}

// Stop here until pytest has checked the gateway's storage: it answers "ok" or "fail <why>".
// E2E_NO_HANDSHAKE=1 skips the wait (running a script by hand against `python -m tests.e2e.stack`).
export async function checkpoint(name, details = {}) {
  process.stdout.write(`@@checkpoint ${JSON.stringify({ name, ...details })}\n`);
  if (process.env.E2E_NO_HANDSHAKE) return;
  const answer = await nextLine();
  if (answer !== "ok") throw new Error(`storage check "${name}" failed: ${answer}`);
}

export function log(message) {
  const elapsed = ((performance.now() / 1000) | 0).toString().padStart(3);
  process.stdout.write(`[${elapsed}s] ${message}\n`);
}
