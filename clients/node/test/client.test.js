// GantryClient against a real broker (GANTRY_URL).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { GantryClient, RPCError, ConnectionLost, RequestTooLarge } from "../src/index.js";
import { brokerUrl, unique, waitFor, nextEvent } from "../testing/helpers.js";

const url = brokerUrl();
const client = new GantryClient({ url, name: "node-client-test" });
after(() => client.close());

test("enqueue and job: a round trip with options", async () => {
  const queue = unique();
  const id = await client.enqueue("email.send", { to: "ana@example.com" },
    { queue, priority: 7, maxAttempts: 3, tags: ["welcome"], meta: { trace: "abc" }, uniqueKey: `${queue}:ana` });
  assert.equal(typeof id, "string");
  const job = await client.job(id);
  assert.equal(job.id, id);
  assert.equal(job.type, "email.send");
  assert.deepEqual(job.args, { to: "ana@example.com" });
  assert.equal(job.queue, queue);
  assert.equal(job.state, "available");
  assert.equal(job.priority, 7);
  assert.equal(job.max_attempts, 3);
  assert.equal(job.attempt, 0);
  assert.deepEqual(job.tags, ["welcome"]);
  assert.deepEqual(job.meta, { trace: "abc" });
  assert.equal(job.unique_key, `${queue}:ana`);
  assert.deepEqual(job.errors, []);

  const later = await client.enqueue("report.build", [2026, 1], { queue, runAt: new Date(Date.now() + 3_600_000) });
  assert.equal((await client.job(later)).state, "scheduled");
  const delayed = await client.enqueue("report.build", [], { queue, delay_ms: 60_000 }); // snake_case works too
  assert.equal((await client.job(delayed)).state, "scheduled");

  const ids = await client.enqueueBatch([
    { type: "thumb.make", args: ["1.png"], queue },
    { type: "thumb.make", args: ["2.png"], queue, priority: 100 },
  ]);
  assert.equal(ids.length, 2);
  const listed = await client.listJobs({ queue, type: "thumb.make" });
  assert.deepEqual(listed.jobs.map((j) => j.id), [...ids].reverse()); // newest first
  const stats = await client.stats();
  assert.equal(stats.queues[queue].counts.available, 3);
  assert.equal(stats.queues[queue].counts.scheduled, 2);
});

test("unique_key: enqueueing a key a waiting job holds answers with that job", async () => {
  const queue = unique();
  const key = `${queue}:report`;
  const first = await client.enqueue("report.build", [2026, 1], { queue, uniqueKey: key });
  assert.equal(await client.enqueue("report.build", [2026, 1], { queue, uniqueKey: key }), first);
  assert.deepEqual(await client.call("enqueue", { type: "report.build", queue, unique_key: key }),
    { id: first, state: "available", duplicate: true });
  assert.equal((await client.stats()).queues[queue].counts.available, 1);
});

test("reserve, extend, ack and nack", async () => {
  const queue = unique();
  const [a, b] = await client.enqueueBatch([{ type: "t", args: 1, queue }, { type: "t", args: 2, queue }]);
  const jobs = await client.reserve(queue, { max: 5, leaseMs: 5000 });
  assert.deepEqual(jobs.map((j) => j.id), [a, b]);
  assert.equal(jobs[0].attempt, 1);
  const extended = await client.extend([a, b, "999999999"], { leaseMs: 10_000 });
  assert.deepEqual(extended.leases.map((l) => l.id).sort(), [a, b].sort());
  assert.deepEqual(extended.lost, ["999999999"]);
  assert.deepEqual(await client.ack(a, { sent: true }), { ok: true });
  assert.deepEqual((await client.job(a)).result, { sent: true });

  const error = new TypeError("no such template");
  const failed = await client.nack(b, error, { retryInMs: 0 });
  assert.equal(failed.state, "available");
  const [lastError] = (await client.job(b)).errors;
  assert.equal(lastError.message, "no such template");
  assert.equal(lastError.kind, "TypeError");
  assert.ok(Array.isArray(lastError.backtrace) && lastError.backtrace[0].startsWith("at "), JSON.stringify(lastError));
  const [again] = await client.reserve([queue], { waitMs: 1000 });
  assert.equal(again.attempt, 2);
  assert.equal((await client.nack(b, { message: "bad input", kind: "ValueError" }, { retry: false })).state, "dead");
  assert.deepEqual(await client.retryJob(b), { id: b, state: "available" });
  assert.deepEqual(await client.cancelJob(b), { id: b, state: "cancelled" });
  assert.deepEqual(await client.discardJob(b), { discarded: true, id: b });
});

test("ackMany: several jobs in one ack; one whose lease is gone comes back in lost, with its state", async () => {
  const queue = unique();
  const [a, b, c] = await client.enqueueBatch([{ type: "t", queue }, { type: "t", queue }, { type: "t", queue }]);
  assert.equal((await client.reserve(queue, { max: 3 })).length, 3);
  await client.ack(a);
  assert.deepEqual(await client.ackMany([b, c, a, "999999999"], { results: { [b]: { sent: true } } }), {
    ok: false, acked: [b, c], lost: [{ id: a, state: "completed" }, { id: "999999999" }],
  });
  assert.deepEqual((await client.job(b)).result, { sent: true });
  assert.equal((await client.job(c)).state, "completed");
  assert.deepEqual(await client.ackMany([a]), { ok: false, acked: [], lost: [{ id: a, state: "completed" }] });
  await assert.rejects(client.ackMany([a, a]), { code: -32602, field: "ids[1]" });
  await assert.rejects(client.ackMany([a], { results: { [b]: 1 } }), { code: -32602, field: `results.${b}` });
});

test("errors carry code, name, message and data (field)", async () => {
  const queue = unique();
  const refused = await client.enqueue("t", [], { queue, priority: 0 }).catch((e) => e);
  assert.ok(refused instanceof RPCError);
  assert.equal(refused.code, -32602);
  assert.equal(refused.name, "invalid_params");
  assert.equal(refused.field, "priority");
  assert.deepEqual(refused.data, { field: "priority" });
  assert.match(refused.message, /priority/);
  assert.equal(refused.retryable, false);

  await assert.rejects(client.enqueueBatch([{ type: "t", queue }, { type: "t", queue, priority: 0 }]),
    { code: -32602, name: "invalid_params", field: "jobs[1].priority" });
  await assert.rejects(client.enqueue("t", [], { queue, delay: 5 }), { code: -32602, field: "delay" });
  await assert.rejects(client.job("999999999"), { code: -32002, name: "not_found", data: { id: "999999999" } });
  await assert.rejects(client.call("jobs.fetch", { id: "1" }), { code: -32601, name: "method_not_found", data: { method: "jobs.fetch" } });
  await assert.rejects(client.call("stats", { verbose: true }), { code: -32602, field: "verbose" });
  const id = await client.enqueue("t", [], { queue });
  await assert.rejects(client.ack(id), { code: -32003, name: "lease_lost", data: { id, state: "available" } });
  const [job] = await client.reserve(queue);
  await client.ack(job.id);
  await assert.rejects(client.retryJob(id), { code: -32008, name: "wrong_state", data: { id, state: "completed" } });
  await assert.rejects(client.quietWorkers({ id: "x", all: true }), { code: -32602, field: "id" });
  assert.equal(client.connections, 1, "errors do not cost the connection");
});

test("many concurrent calls share one connection, answered out of order", async () => {
  const fresh = new GantryClient({ url });
  const queue = unique();
  try {
    const ids = await Promise.all(Array.from({ length: 200 }, (_, n) => fresh.enqueue("bulk", { n }, { queue })));
    assert.equal(new Set(ids).size, 200);
    const jobs = await Promise.all(ids.map((id) => fresh.job(id)));
    assert.deepEqual(jobs.map((j) => j.args.n), Array.from({ length: 200 }, (_, n) => n), "each answer reached its own call");
    // A long poll sent first is answered last: it does not hold up the calls sent after it.
    const order = [];
    const polling = fresh.reserve(unique("empty"), { waitMs: 2000 }).then((jobs) => { order.push("reserve"); return jobs; });
    const stats = await fresh.stats();
    order.push("stats");
    assert.equal(stats.queues[queue].counts.available, 200);
    assert.deepEqual(await polling, []);
    assert.deepEqual(order, ["stats", "reserve"]);
    assert.equal(fresh.connections, 1);
  } finally {
    fresh.close();
  }
});

test("a request over the line limit is refused here; the connection stays", async () => {
  const big = "x".repeat(1 << 20);
  await assert.rejects(client.enqueue("pdf.render", [big]), RequestTooLarge);
  assert.ok((await client.stats()).broker);
});

test("after a drop the next call reconnects and says hello again", async () => {
  const workerId = unique("node-hello");
  // A client that lets an oversize line out: the broker answers -32006 and closes the connection.
  const fresh = new GantryClient({ url, maxRequestBytes: Infinity, worker: { id: workerId, queues: ["q1"], concurrency: 2, handlers: [{ type: "t" }] } });
  try {
    await fresh.stats();
    const first = fresh.session.session_id;
    const disconnected = nextEvent(fresh, "disconnect");
    await assert.rejects(fresh.enqueue("pdf.render", ["x".repeat(2 << 20)]), ConnectionLost);
    await disconnected;
    const stats = await fresh.stats();
    assert.ok(stats.broker);
    assert.equal(fresh.connections, 2);
    assert.notEqual(fresh.session.session_id, first);
    // The broker forgets the dropped connection's worker a moment later.
    const mine = await waitFor(async () => {
      const listed = (await client.listWorkers()).filter((w) => w.id === workerId);
      return listed.length === 1 && listed;
    }, { what: "one worker session with that id" });
    assert.equal(mine[0].session_id, fresh.session.session_id);
    assert.deepEqual(mine[0].queues, ["q1"]);
    assert.equal(mine[0].concurrency, 2);
    assert.deepEqual(mine[0].handlers, ["t"]);
    // close() drops the connection too; the next call opens a new one.
    fresh.close();
    await fresh.stats();
    assert.equal(fresh.connections, 3);
  } finally {
    fresh.close();
  }
});

test("broker notifications are events, not responses", async () => {
  const workerId = unique("node-notified");
  const worker = new GantryClient({ url, worker: { id: workerId, queues: [unique()] } });
  try {
    await worker.stats(); // connected, hello sent
    const polling = worker.reserve(unique(), { waitMs: 1000 });
    const heard = nextEvent(worker, "notification");
    assert.equal(await client.quietWorkers({ id: workerId }), 1);
    const [method, message] = await heard;
    assert.equal(method, "worker.quiet");
    assert.deepEqual(message, { jsonrpc: "2.0", method: "worker.quiet" });
    assert.deepEqual(await polling, []); // the waiting reserve still gets its own answer
    await waitFor(async () => (await client.listWorkers()).find((w) => w.id === workerId)?.state === "quiet", { what: "state quiet" });
  } finally {
    worker.close();
  }
});

test("queues: pause, resume, list; cleanup", async () => {
  const queue = unique();
  assert.deepEqual(await client.pauseQueue(queue), { paused: true, queue });
  const id = await client.enqueue("t", [], { queue });
  assert.deepEqual(await client.reserve(queue), []);
  assert.equal((await client.listQueues())[queue].paused, true);
  assert.deepEqual(await client.resumeQueue(queue), { paused: false, queue });
  const [job] = await client.reserve(queue);
  assert.equal(job.id, id);
  await client.ack(id);
  const cleaned = await client.cleanup({ olderThanMs: 0, queue });
  assert.equal(cleaned.deleted, 1);
  assert.equal(cleaned.more, false);
});
