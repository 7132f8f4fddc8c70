// The connection layer against a scripted fake broker (for what a real one cannot be made to do on demand:
// storage_unavailable, oversize answers), plus the pieces that need no broker.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { readFileSync } from "node:fs";
import { GantryClient, RPCError, ConnectionLost, ERROR_CODES, parseAddress } from "../src/index.js";

/** A TCP server answering each request line with `answer(request, connectionNumber, socket)`'s lines. */
async function fakeBroker(answer) {
  const seen = [];
  let connections = 0;
  const server = net.createServer((socket) => {
    const number = ++connections;
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk;
      let end;
      while ((end = buffered.indexOf("\n")) !== -1) {
        const request = JSON.parse(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
        seen.push({ connection: number, ...request });
        const reply = request.method === "hello"
          ? [{ jsonrpc: "2.0", id: request.id, result: { broker: "fake", protocol: 1, session_id: `s${number}` } }]
          : answer(request, number, socket) ?? [];
        for (const line of reply) socket.write((typeof line === "string" ? line : JSON.stringify(line)) + "\n");
      }
    });
    socket.on("error", () => {});
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

const ok = (request, result) => ({ jsonrpc: "2.0", id: request.id, result });
const refuse = (request, error) => ({ jsonrpc: "2.0", id: request.id, error });

test("a storage_unavailable refusal with applied: false is resent with backoff", async () => {
  let tries = 0;
  const broker = await fakeBroker((request) => (++tries <= 2
    ? [refuse(request, { code: -32004, message: "PostgreSQL is away", data: { retryable: true, applied: false } })]
    : [ok(request, { id: "7", state: "available" })]));
  const client = new GantryClient({ url: broker.url });
  try {
    assert.equal(await client.enqueue("t"), "7");
    const enqueues = broker.seen.filter((r) => r.method === "enqueue");
    assert.equal(enqueues.length, 3);
    assert.equal(new Set(enqueues.map((r) => r.id)).size, 3, "each resend has a fresh id");
  } finally {
    client.close();
    broker.close();
  }
});

test("a storage_unavailable whose outcome is unknown is not resent", async () => {
  const broker = await fakeBroker((request) => [refuse(request, { code: -32004, message: "outcome unknown", data: { retryable: true } })]);
  const client = new GantryClient({ url: broker.url });
  try {
    const error = await client.enqueue("t").catch((e) => e);
    assert.ok(error instanceof RPCError);
    assert.equal(error.name, "storage_unavailable");
    assert.equal(error.retryable, true);
    assert.equal(broker.seen.filter((r) => r.method === "enqueue").length, 1);
  } finally {
    client.close();
    broker.close();
  }
});

test("responses are matched by id, out of order; notifications and unknown lines are not responses", async () => {
  const held = [];
  const broker = await fakeBroker((request) => {
    held.push(request);
    if (held.length < 3) return [];
    // Answer the three in reverse, with a notification, a blank line and a line for nobody in between.
    return [
      ok(held[2], "third"),
      { jsonrpc: "2.0", method: "worker.stop" },
      "",
      ok({ id: 424242 }, "for nobody"),
      { jsonrpc: "2.0", method: "worker.future_thing" },
      ok(held[1], "second"),
      ok(held[0], "first"),
    ];
  });
  const client = new GantryClient({ url: broker.url });
  const heard = [];
  client.on("notification", (method) => heard.push(method));
  try {
    const answers = await Promise.all([client.call("a"), client.call("b"), client.call("c")]);
    assert.deepEqual(answers, ["first", "second", "third"]);
    assert.deepEqual(heard, ["worker.stop", "worker.future_thing"]);
    assert.equal(broker.seen[0].method, "hello", "hello goes first");
  } finally {
    client.close();
    broker.close();
  }
});

test("hello goes first on every connection; a drop fails what was in flight", async () => {
  const broker = await fakeBroker((request, number, socket) => {
    if (request.method === "drop") { socket.destroy(); return []; }
    return [ok(request, number)];
  });
  const client = new GantryClient({ url: broker.url, name: "fake-test", worker: { id: "w", queues: ["q"] } });
  try {
    assert.equal(await client.call("stats"), 1);
    await assert.rejects(client.call("drop"), ConnectionLost);
    assert.equal(await client.call("stats"), 2);
    assert.deepEqual(broker.seen.map((r) => `${r.connection}:${r.method}`), ["1:hello", "1:stats", "1:drop", "2:hello", "2:stats"]);
    assert.deepEqual(broker.seen[3].params, { client: "fake-test", protocol: 1, worker: { id: "w", queues: ["q"] } });
    assert.equal(client.session.session_id, "s2");
  } finally {
    client.close();
    broker.close();
  }
});

test("an answer line over the client's limit closes the connection", async () => {
  const broker = await fakeBroker((request) => [ok(request, "y".repeat(5000))]);
  const client = new GantryClient({ url: broker.url, maxLineBytes: 4096 });
  try {
    // hello fits; the big answer does not.
    await assert.rejects(client.call("stats"), (error) => error instanceof ConnectionLost && /longer than 4096/.test(error.message));
  } finally {
    client.close();
    broker.close();
  }
});

test("an unreachable broker fails with ConnectionLost once patience runs out", async () => {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  const client = new GantryClient({ url: `gantry://127.0.0.1:${port}`, patienceMs: 300 });
  const started = Date.now();
  await assert.rejects(client.stats(), (error) => error instanceof ConnectionLost && /cannot reach the broker/.test(error.message));
  assert.ok(Date.now() - started < 3000);
});

test("addresses: host:port, gantry://host:port, [v6]:port, default port", () => {
  assert.deepEqual(parseAddress("127.0.0.1:7440"), { host: "127.0.0.1", port: 7440 });
  assert.deepEqual(parseAddress("gantry://broker.internal:9000"), { host: "broker.internal", port: 9000 });
  assert.deepEqual(parseAddress("gantry://[::1]:7441"), { host: "::1", port: 7441 });
  assert.deepEqual(parseAddress("localhost"), { host: "localhost", port: 7440 });
  assert.throws(() => parseAddress("gantry://host:99999"), TypeError);
  assert.throws(() => parseAddress("a:b:c"), TypeError);
});

test("the error table is proto-json/errors.json's", () => {
  const table = JSON.parse(readFileSync(new URL("../../../proto-json/errors.json", import.meta.url), "utf8"));
  assert.deepEqual(Object.fromEntries(table.map((e) => [e.code, [e.name, e.retryable]])),
    Object.fromEntries(Object.entries(ERROR_CODES)));
  assert.equal(new RPCError({ code: -32050, message: "?" }).name, "server_error");
});
