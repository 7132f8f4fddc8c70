// Shared by the tests: the broker under test, unique names, polling.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

/** The broker's address; the tests need a real one. */
export function brokerUrl() {
  const url = process.env.GANTRY_URL;
  if (!url) {
    throw new Error("GANTRY_URL is not set: these tests need a running broker. Run them with\n" +
      "  python3 scripts/with_broker.py -- node --test clients/node/test/\n(from the repository root)");
  }
  return url;
}

/** A queue (or worker id) name no other test or run uses. */
export const unique = (prefix = "node-test") => `${prefix}-${randomBytes(5).toString("hex")}`;

/** Polls `check` until it returns a truthy value (which is returned), failing after `timeoutMs`. */
export async function waitFor(check, { timeoutMs = 10_000, everyMs = 50, what = "the condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` + (last ? ` (last error: ${last.message})` : ""));
    await sleep(everyMs);
  }
}

/** Resolves the first emission of `event` on `emitter` (with its arguments), or rejects after `timeoutMs`. */
export function nextEvent(emitter, event, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { emitter.off(event, on); reject(new Error(`no ${event} event within ${timeoutMs} ms`)); }, timeoutMs);
    timer.unref();
    const on = (...args) => { clearTimeout(timer); resolve(args); };
    emitter.once(event, on);
  });
}

/** Runs `body` with env variables set (undefined: unset), putting them back after. */
export async function withEnv(variables, body) {
  const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  const set = (values) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  set(variables);
  try {
    return await body();
  } finally {
    set(saved);
  }
}
