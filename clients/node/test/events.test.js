// Events and subscriptions against a real broker (GANTRY_URL): the client's events.* and subscriptions.* methods.
// Subscriptions are global to the broker, so every test names its subscriptions and event types uniquely and
// deletes its subscriptions at the end; none subscribes to "*", which would see other tests' events.
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { GantryClient, RPCError } from "../src/index.js";
import { brokerUrl, unique, waitFor } from "../testing/helpers.js";

const url = brokerUrl();
const client = new GantryClient({ url, name: "node-events-test" });
after(() => client.close());

/** An event type prefix (or operation name) no other test or run uses: `prefix_<hex>`. */
const typePrefix = (prefix) => unique(prefix).replace(/-/g, "_");

/** Creates subscriptions through `client`, remembering them so that `cleanup()` deletes them. */
function subscriptions() {
  const names = [];
  return {
    name: (what) => { const name = unique(`node-sub-${what}`); names.push(name); return name; },
    cleanup: async () => {
      for (const name of names) await client.deleteSubscription(name).catch(() => {});
      const left = new Set((await client.listSubscriptions()).map((s) => s.name));
      assert.deepEqual(names.filter((name) => left.has(name)), []);
    },
  };
}

/** Reserves the one job waiting on `queue`. */
async function reserveOne(queue) {
  const jobs = await client.reserve(queue, { waitMs: 2000 });
  assert.equal(jobs.length, 1, JSON.stringify(jobs));
  return jobs[0];
}

describe("events", { concurrency: true }, () => {
  test("publish reaches a job and an operation subscription and skips a filtered one; getEvent shows states", async () => {
    const subs = subscriptions();
    try {
      const type = `${typePrefix("order")}.paid`;
      const jobQueue = unique();
      const opQueue = unique();
      const opName = typePrefix("fulfil");
      const receipts = subs.name("receipts");
      const fulfilment = subs.name("fulfilment");
      const refunds = subs.name("refunds");

      const created = await client.upsertSubscription(receipts, type, { type: "receipt.send", queue: jobQueue }, { filter: { paid: true } });
      assert.equal(created.created, true);
      assert.deepEqual(created.subscription.target, { type: "receipt.send", queue: jobQueue, args: "$payload", priority: 16383, max_attempts: 25 });
      assert.deepEqual(created.subscription.filter, { paid: true });
      assert.equal(created.subscription.paused, false);
      assert.equal(created.subscription.source, "rpc");
      assert.equal(created.subscription.event, type);
      await client.upsertSubscription(fulfilment, type,
        { operation: { name: opName, branches: { main: ["pick.items", "ship.items"] }, queue: opQueue, globals: { warehouse: "w1" } } });
      await client.upsertSubscription(refunds, type, { type: "refund.send", queue: jobQueue }, { filter: { paid: false } });
      // Upserting again replaces it: created false.
      const again = await client.upsertSubscription(refunds, type, { type: "refund.issue", queue: jobQueue }, { filter: { paid: false } });
      assert.equal(again.created, false);
      assert.equal(again.subscription.target.type, "refund.issue");

      const listed = (await client.listSubscriptions()).filter((s) => [receipts, fulfilment, refunds].includes(s.name));
      assert.deepEqual(listed.map((s) => s.name).sort(), [receipts, fulfilment, refunds].sort());

      const payload = { order_id: 42, paid: true };
      const published = await client.publish(type, payload);
      assert.equal(typeof published.id, "string");
      assert.equal(published.duplicate, false);
      const byName = Object.fromEntries(published.triggered.map((t) => [t.subscription, t]));
      assert.deepEqual(Object.keys(byName).sort(), [receipts, fulfilment].sort(), "the filtered subscription starts nothing");
      assert.equal(typeof byName[receipts].job_id, "string");
      assert.equal(byName[receipts].operation_id, undefined);
      assert.equal(typeof byName[fulfilment].operation_id, "string");
      assert.equal(byName[fulfilment].job_id, undefined);

      // The job: its args are the payload, its meta names the event and the subscription.
      const job = await reserveOne(jobQueue);
      assert.equal(job.id, byName[receipts].job_id);
      assert.equal(job.type, "receipt.send");
      assert.deepEqual(job.args, payload);
      assert.deepEqual(job.meta, { event_id: published.id, event_type: type, subscription: receipts });

      // The operation: its globals carry the event beside the subscription's own.
      const event = { id: published.id, type, payload };
      const op = await client.getOperation(byName[fulfilment].operation_id);
      assert.equal(op.name, opName);
      assert.equal(op.state, "running");
      assert.deepEqual(op.globals, { warehouse: "w1", event });
      const step = await reserveOne(opQueue);
      assert.equal(step.type, "pick.items");
      assert.equal(step.operation.id, op.id);
      assert.deepEqual(step.operation.globals, { warehouse: "w1", event });

      // getEvent: the event with what it triggered and their states now.
      const states = (got) => Object.fromEntries(got.triggered.map((t) => [t.subscription, t.state]));
      const got = await client.getEvent(published.id);
      assert.equal(got.id, published.id);
      assert.equal(got.type, type);
      assert.deepEqual(got.payload, payload);
      assert.equal(got.key, undefined);
      assert.equal(got.replay_of, undefined);
      assert.ok(!Number.isNaN(Date.parse(got.published_at)), got.published_at);
      assert.deepEqual(states(got), { [receipts]: "reserved", [fulfilment]: "running" });
      assert.equal(got.triggered.find((t) => t.subscription === receipts).job_id, job.id);

      await client.ack(job.id, { sent: true });
      await client.ack(step.id);
      await client.ack((await reserveOne(opQueue)).id);
      await waitFor(async () => (await client.getOperation(op.id)).state === "completed", { what: "the operation to complete" });
      assert.deepEqual(states(await client.getEvent(published.id)), { [receipts]: "completed", [fulfilment]: "completed" });

      // Nothing else was started: the filtered subscription's job never came.
      assert.deepEqual((await client.listJobs({ queue: jobQueue })).jobs.map((j) => j.id), [job.id]);
    } finally {
      await subs.cleanup();
    }
  });

  test("a key deduplicates: the same event answered again, nothing started twice; dedupeMs 0 publishes anew", async () => {
    const subs = subscriptions();
    try {
      const type = `${typePrefix("invoice")}.sent`;
      const queue = unique();
      const name = subs.name("dedupe");
      await client.upsertSubscription(name, type, { type: "invoice.archive", queue, args: { fixed: true } });
      const key = unique("invoice-key");

      const first = await client.publish(type, { invoice: 1 }, { key });
      assert.equal(first.duplicate, false);
      assert.equal(first.triggered.length, 1);
      const second = await client.publish(type, { invoice: 1 }, { key });
      assert.deepEqual(second, { ...first, duplicate: true });
      // dedupe_ms is sent in snake_case: 0 means no window, so this one is new.
      const third = await client.publish(type, { invoice: 1 }, { key, dedupeMs: 0 });
      assert.equal(third.duplicate, false);
      assert.notEqual(third.id, first.id);
      assert.notEqual(third.triggered[0].job_id, first.triggered[0].job_id);

      const jobs = (await client.listJobs({ queue })).jobs;
      assert.deepEqual(jobs.map((j) => j.id).sort(), [first.triggered[0].job_id, third.triggered[0].job_id].sort());
      assert.deepEqual((await client.job(first.triggered[0].job_id)).args, { fixed: true }, "the target's own args win over $payload");
      assert.equal((await client.getEvent(first.id)).key, key);
    } finally {
      await subs.cleanup();
    }
  });

  test("a prefix.* subscription matches every type under the prefix; listEvents filters and pages", async () => {
    const subs = subscriptions();
    try {
      const prefix = typePrefix("user");
      const queue = unique();
      const name = subs.name("wildcard");
      await client.upsertSubscription(name, `${prefix}.*`, { type: "user.audit", queue });
      const since = new Date(Date.now() - 60_000);

      const created = await client.publish(`${prefix}.created`, { user: 1 });
      const deleted = await client.publish(`${prefix}.deleted.hard`, { user: 1 });
      const other = await client.publish(`${prefix}x.created`, { user: 1 }); // another prefix
      const bare = await client.publish(prefix, { user: 1 }); // the prefix itself has no dot after it
      assert.deepEqual(created.triggered.map((t) => t.subscription), [name]);
      assert.deepEqual(deleted.triggered.map((t) => t.subscription), [name]);
      assert.deepEqual(other.triggered, []);
      assert.deepEqual(bare.triggered, []);
      const jobs = await client.reserve(queue, { max: 10, waitMs: 2000 });
      assert.deepEqual(jobs.map((j) => j.meta.event_type).sort(), [`${prefix}.created`, `${prefix}.deleted.hard`]);
      for (const job of jobs) await client.ack(job.id);

      const listed = await client.listEvents({ type: `${prefix}.*` });
      assert.deepEqual(listed.events.map((e) => e.id), [deleted.id, created.id]); // newest first
      assert.equal(listed.events[0].type, `${prefix}.deleted.hard`);
      assert.deepEqual(listed.events[0].payload, { user: 1 });
      assert.equal(listed.next_cursor, undefined);
      assert.deepEqual((await client.listEvents({ type: `${prefix}.created` })).events.map((e) => e.id), [created.id]);
      const page = await client.listEvents({ type: `${prefix}.*`, limit: 1, since });
      assert.deepEqual(page.events.map((e) => e.id), [deleted.id]);
      const rest = await client.listEvents({ type: `${prefix}.*`, limit: 1, cursor: page.next_cursor });
      assert.deepEqual(rest.events.map((e) => e.id), [created.id]);
      assert.deepEqual((await client.listEvents({ type: `${prefix}.*`, since: new Date(Date.now() + 3_600_000) })).events, []);
    } finally {
      await subs.cleanup();
    }
  });

  test("a paused subscription starts nothing until resumed", async () => {
    const subs = subscriptions();
    try {
      const type = `${typePrefix("ticket")}.opened`;
      const queue = unique();
      const name = subs.name("pause");
      await client.upsertSubscription(name, type, { type: "ticket.notify", queue });

      const paused = await client.pauseSubscription(name);
      assert.equal(paused.name, name);
      assert.equal(paused.paused, true);
      assert.equal((await client.listSubscriptions()).find((s) => s.name === name).paused, true);
      const missed = await client.publish(type, { ticket: 1 });
      assert.deepEqual(missed.triggered, []);
      assert.deepEqual((await client.getEvent(missed.id)).triggered, []);

      const resumed = await client.resumeSubscription(name);
      assert.equal(resumed.name, name);
      assert.equal(resumed.paused, false);
      const heard = await client.publish(type, { ticket: 2 });
      assert.deepEqual(heard.triggered.map((t) => t.subscription), [name]);
      const job = await reserveOne(queue);
      assert.deepEqual(job.args, { ticket: 2 });
      await client.ack(job.id);
    } finally {
      await subs.cleanup();
    }
  });

  test("replayEvent publishes the event again, never deduplicated, to the subscriptions matching now", async () => {
    const subs = subscriptions();
    try {
      const type = `${typePrefix("payment")}.failed`;
      const queue = unique();
      const first = subs.name("replay-a");
      await client.upsertSubscription(first, type, { type: "payment.alert", queue });
      const original = await client.publish(type, { payment: 9 }, { key: unique("payment-key") });
      assert.equal(original.triggered.length, 1);

      const second = subs.name("replay-b"); // subscribed after the event: the replay reaches it too
      await client.upsertSubscription(second, type, { type: "payment.log", queue });
      const replayed = await client.replayEvent(original.id);
      assert.equal(replayed.duplicate, false);
      assert.notEqual(replayed.id, original.id);
      assert.deepEqual(replayed.triggered.map((t) => t.subscription).sort(), [first, second].sort());
      const again = await client.replayEvent(original.id);
      assert.equal(again.duplicate, false);
      assert.notEqual(again.id, replayed.id);

      const got = await client.getEvent(replayed.id);
      assert.equal(got.replay_of, original.id);
      assert.equal(got.type, type);
      assert.deepEqual(got.payload, { payment: 9 });
      const jobs = (await client.listJobs({ queue })).jobs;
      assert.equal(jobs.length, 5);
      assert.deepEqual(jobs.map((j) => j.args), Array(5).fill({ payment: 9 }));
    } finally {
      await subs.cleanup();
    }
  });

  test("refusals: code, name and field", async () => {
    const subs = subscriptions();
    try {
      const type = `${typePrefix("refused")}.happened`;
      const name = subs.name("refused");
      const filter = await client.upsertSubscription(name, type, { type: "audit.write" }, { filter: [1] }).catch((e) => e);
      assert.ok(filter instanceof RPCError);
      assert.equal(filter.code, -32602);
      assert.equal(filter.name, "invalid_params");
      assert.equal(filter.field, "filter");
      assert.equal(filter.data.field, "filter");
      await assert.rejects(client.upsertSubscription(name, type, { type: "audit.write" }, { filter: "paid" }), { code: -32602, field: "filter" });
      assert.equal((await client.listSubscriptions()).find((s) => s.name === name), undefined, "nothing was created");

      const star = await client.publish(`${typePrefix("refused")}.*`, {}).catch((e) => e);
      assert.ok(star instanceof RPCError);
      assert.equal(star.code, -32602);
      assert.equal(star.data.field, "type");
      await assert.rejects(client.publish("has space", {}), { code: -32602, field: "type" });
      await assert.rejects(client.listEvents({ limit: 0 }), { code: -32602, field: "limit" });

      await assert.rejects(client.getEvent("999999999"), { code: -32002, name: "not_found" });
      await assert.rejects(client.replayEvent("999999999"), { code: -32002, name: "not_found" });
      const gone = unique("node-sub-never");
      await assert.rejects(client.deleteSubscription(gone), { code: -32002, name: "not_found" });
      await assert.rejects(client.pauseSubscription(gone), { code: -32002, name: "not_found" });

      await client.upsertSubscription(name, type, { type: "audit.write" });
      assert.deepEqual(await client.deleteSubscription(name), { deleted: true });
      await assert.rejects(client.deleteSubscription(name), { code: -32002 });
    } finally {
      await subs.cleanup();
    }
  });
});
