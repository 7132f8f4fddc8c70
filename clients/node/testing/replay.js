// Replays a conformance transcript (proto-json/conformance/README.md) through this client's Connection: the
// same matching rules as proto-json/conformance.py, but every line goes out, and every answer comes back,
// through src/connection.js (framing, line limit, id matching, notifications told apart from responses).
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Connection, parseAddress } from "../src/index.js";

export class Mismatch extends Error {}

const typeOf = (v) => v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
const show = (v) => JSON.stringify(v) ?? String(v);

export function substitute(value, variables) {
  if (typeof value === "string") {
    for (const [name, saved] of Object.entries(variables)) if (value === "${" + name + "}") return saved;
    for (const [name, saved] of Object.entries(variables)) {
      value = value.split("${" + name + "}").join(typeof saved === "string" ? saved : JSON.stringify(saved));
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((item) => substitute(item, variables));
  if (typeOf(value) === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [substitute(k, variables), substitute(v, variables)]));
  }
  return value;
}

export function match(expected, actual, where = "response") {
  if (expected === "${any}") return;
  if (typeOf(expected) === "object" && Object.keys(expected).length === 1 && "${contains}" in expected) {
    contains(expected["${contains}"], actual, where);
  } else if (typeOf(expected) === "object") {
    if (typeOf(actual) !== "object") throw new Mismatch(`${where}: expected an object, got ${show(actual)}`);
    for (const [key, value] of Object.entries(expected)) {
      if (value === "${absent}") {
        if (key in actual) throw new Mismatch(`${where}: ${JSON.stringify(key)} should be absent, got ${show(actual[key])}`);
        continue;
      }
      if (!(key in actual)) throw new Mismatch(`${where}: no ${JSON.stringify(key)} in ${show(actual)}`);
      match(value, actual[key], `${where}.${key}`);
    }
  } else if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      throw new Mismatch(`${where}: expected ${expected.length} elements, got ${show(actual)}`);
    }
    expected.forEach((value, i) => match(value, actual[i], `${where}[${i}]`));
  } else if (expected !== actual) {
    throw new Mismatch(`${where}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

/** `{"${contains}": [a, b]}`: an array with elements matching a, then b, in that order, others anywhere. */
function contains(wanted, actual, where) {
  if (!Array.isArray(wanted)) throw new Mismatch(`${where}: \${contains} takes an array of elements to look for`);
  if (!Array.isArray(actual)) throw new Mismatch(`${where}: expected an array, got ${show(actual)}`);
  let found = 0;
  for (const item of actual) {
    if (found === wanted.length) break;
    try {
      match(wanted[found], item, where);
      found += 1;
    } catch (error) {
      if (!(error instanceof Mismatch)) throw error;
    }
  }
  if (found < wanted.length) {
    throw new Mismatch(`${where}: no element matching ${show(wanted[found])}${found ? " after the ones found before it" : ""} in ${show(actual)}`);
  }
}

export function pick(value, dotted) {
  for (const part of dotted.split(".")) value = Array.isArray(value) ? value[Number(part)] : value?.[part];
  return value;
}

function lineOf(step, variables) {
  if ("send" in step) return JSON.stringify(substitute(step.send, variables));
  if ("send_line" in step) return substitute(step.send_line, variables);
  if ("repeat_line" in step) {
    const r = step.repeat_line;
    return r.prefix + r.repeat.repeat(r.count) + r.suffix;
  }
  throw new Mismatch(`a step needs send, send_line or repeat_line: ${show(step)}`);
}

/** Lines no request waits for (id null, batches, answers to raw lines), in arrival order. */
class Inbox {
  #lines = [];
  #waiters = [];
  push(value, line) {
    const item = value === undefined ? { notJson: line } : { value };
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item); else this.#lines.push(item);
  }
  /** The next line: {promise, cancel}; the promise resolves null if `closed` comes first. */
  wait(closed) {
    if (this.#lines.length) return { promise: Promise.resolve(this.#lines.shift()), cancel() {} };
    let waiter;
    const promise = new Promise((resolve) => { waiter = resolve; this.#waiters.push(resolve); });
    const cancel = () => { this.#waiters = this.#waiters.filter((w) => w !== waiter); };
    closed.then(() => { cancel(); waiter(null); });
    return { promise, cancel };
  }
}

/**
 * Runs one transcript file on a new connection to `url`. `schemas` (optional, a testing/schemas.js Schemas)
 * validates each response. Resolves the transcript's name; rejects with Mismatch naming the step.
 */
export async function replay(file, url, { schemas, readTimeoutMs = 20_000 } = {}) {
  const transcript = JSON.parse(readFileSync(file, "utf8"));
  const variables = { queue: "conf-" + randomBytes(6).toString("hex") };
  const { host, port } = parseAddress(url);
  const inbox = new Inbox();
  const notifications = []; // from the broker, not yet looked for by a `notification` step
  const arrivals = []; // every line that is not a notification, in arrival order
  let lineWaiter = null;
  const connection = await Connection.connect(host, port, {
    onUnmatched: (value, line) => inbox.push(value, line),
    onNotification: (message) => notifications.push(message),
    onLine: (value, line) => {
      if (!isNotification(value)) arrivals.push(value);
      const waiter = lineWaiter;
      lineWaiter = null;
      waiter?.(value === undefined ? { notJson: line } : { value });
    },
  });
  const closed = connection.closed.then(() => true);
  const nextLine = () => new Promise((resolve) => { lineWaiter = resolve; });
  const state = { connection, inbox, closed, variables, schemas, readTimeoutMs, notifications, arrivals, nextLine };
  try {
    for (const [index, step] of transcript.steps.entries()) {
      try {
        await runStep(step, state);
      } catch (error) {
        const name = file.split("/").pop();
        throw new Mismatch(`${name} step ${index + 1}: ${error.message}`, { cause: error });
      }
    }
  } finally {
    connection.close();
  }
  return transcript.name;
}

const isNotification = (value) => typeOf(value) === "object" && "method" in value && !("id" in value);

/** Resolves `promise`, or rejects with Mismatch after `ms` (its timer cleared either way). */
async function within(ms, promise, what) {
  const timer = new AbortController();
  try {
    return await Promise.race([promise, sleep(ms, undefined, { signal: timer.signal }).then(() => {
      throw new Mismatch(`no ${what} within ${ms} ms`);
    })]);
  } finally {
    timer.abort();
  }
}

async function runStep(step, state) {
  const { connection, inbox, closed, variables, schemas, readTimeoutMs, notifications, arrivals, nextLine } = state;
  if (typeof step.wait_ms === "number") await sleep(step.wait_ms);
  if ("notification" in step) {
    // One skipped while reading earlier answers, or else the next line, which must be one.
    if (!notifications.length) {
      const line = await within(readTimeoutMs, Promise.race([nextLine(), closed.then(() => ({ closed: true }))]), "notification");
      if (line.closed) throw new Mismatch("the connection closed before the broker's notification");
      if (!isNotification(line.value)) throw new Mismatch(`expected a notification, got ${line.notJson ?? show(line.value)}`);
    }
    match(substitute(step.notification, variables), notifications.shift(), "notification");
    return;
  }
  const firstArrival = arrivals.length;
  const group = step.pipeline ?? [step];
  const pipelined = "pipeline" in step;
  // Send every line first. A request object with a usable id goes through request() (matched by id);
  // everything else is a raw line whose answer, if any, arrives among the unmatched lines.
  const sent = [];
  const inFlight = new Set();
  for (const item of group) {
    const line = lineOf(item, variables);
    const request = "send" in item ? substitute(item.send, variables) : undefined;
    const id = typeOf(request) === "object" ? request.id : undefined;
    const byId = "expect" in item && (typeof id === "string" || Number.isInteger(id)) && !inFlight.has(JSON.stringify(id));
    let answer = null;
    if (byId) {
      inFlight.add(JSON.stringify(id));
      answer = connection.request(request, line).then((value) => ({ value }), (error) => ({ error }));
    } else {
      connection.sendLine(line);
    }
    sent.push({ item, request, id, answer });
  }

  const awaited = sent.filter(({ item }) => "expect" in item);
  const collect = async () => {
    if (!pipelined) {
      // One request at a time: the next line that is not a notification is its answer, whichever path it takes.
      const responses = [];
      for (const { id, answer } of awaited) {
        const unmatched = inbox.wait(closed);
        const fromInbox = unmatched.promise.then((item) => ({ via: "inbox", item: item ?? { closed: true } }));
        const byId = answer ? answer.then((item) => ({ via: "id", item })) : new Promise(() => {});
        const got = await Promise.race([byId, fromInbox]);
        if (got.via === "id") unmatched.cancel(); else if (answer) connection.forget(id);
        responses.push(got.item);
      }
      return responses;
    }
    // Pipelined: answers come in any order; gather them all, then pair each expect with the answer of its id.
    return Promise.all(awaited.map(({ answer }) => answer ?? inbox.wait(closed).promise.then((item) => item ?? { closed: true })));
  };
  const responses = await within(readTimeoutMs, collect(), "answer");
  if ("answered_in" in step) {
    const arrival = arrivals.slice(firstArrival, firstArrival + awaited.length).map((v) => (typeOf(v) === "object" ? v.id : null));
    const wanted = substitute(step.answered_in, variables);
    if (show(arrival) !== show(wanted)) throw new Mismatch(`answers came in the order ${show(arrival)}, expected ${show(wanted)}`);
  }
  for (const response of responses) {
    if (response.closed || response.error) throw new Mismatch("the broker closed the connection instead of answering" + (response.error ? ` (${response.error.message})` : ""));
    if ("notJson" in response) throw new Mismatch(`the broker sent a line that is not JSON: ${response.notJson.slice(0, 200)}`);
  }
  const values = responses.map((r) => r.value);

  let pairs;
  if (pipelined) {
    const byId = new Map(values.filter((v) => typeOf(v) === "object").map((v) => [JSON.stringify(v.id), v]));
    pairs = awaited.map(({ item, request }) => {
      const key = JSON.stringify(substitute(item.expect, variables).id);
      if (!byId.has(key)) throw new Mismatch(`no response with id ${key} among ${show(values)}`);
      return [item, request, byId.get(key)];
    });
  } else {
    pairs = awaited.map(({ item, request }, i) => [item, request, values[i]]);
  }
  for (const [item, request, response] of pairs) {
    match(substitute(item.expect, variables), response);
    if (schemas) checkSchema(schemas, request, response);
    for (const [name, dotted] of Object.entries(item.save ?? {})) variables[name] = pick(response, dotted);
  }
  if (step.closes) {
    const gone = await within(5000, closed, "close").catch(() => false);
    if (!gone) throw new Mismatch("the broker should have closed the connection");
  }
}

function checkSchema(schemas, request, response) {
  if (typeOf(response) !== "object") return;
  let problems = schemas.validate("envelope.response.json", response);
  if (typeOf(request) === "object" && "result" in response && typeof request.method === "string") {
    try {
      problems = problems.concat(schemas.validate(`methods/${request.method}.result.json`, response.result));
    } catch {
      // a method without a schema (e.g. a misspelt one answered with an error): nothing more to check
    }
  }
  if (problems.length) throw new Mismatch(`the response breaks the schema: ${problems[0].slice(0, 300)}`);
}
