// Operations against a real broker (GANTRY_URL): the client's operations.* methods, ack with set / jump_to,
// and Workers running steps that return StepResults.
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { GantryClient, Worker, StepResult, RPCError } from "../src/index.js";
import { brokerUrl, unique, waitFor, nextEvent } from "../testing/helpers.js";

const url = brokerUrl();
const client = new GantryClient({ url, name: "node-operations-test" });
after(() => client.close());

/** An operation name no other test or run uses (names are job-type-like). */
const opName = (prefix) => `${prefix}.${unique("op").replace(/-/g, "_")}`;
const waitForOperation = (id, states, timeoutMs = 15_000) =>
  waitFor(async () => { const op = await client.getOperation(id); return [].concat(states).includes(op.state) && op; },
    { timeoutMs, what: `operation ${id} to be ${states}` });
const gate = () => { let open; const promise = new Promise((resolve) => { open = resolve; }); return { promise, open }; };

/** Runs a Worker (`options`: queues, handlers, …) until `until(worker)` resolves; resolves its result. No warnings allowed. */
async function withWorker(options, until) {
  const worker = new Worker({ url, concurrency: 4, id: unique("node-op-worker"), ...options });
  const warnings = [];
  worker.on("warning", (error) => warnings.push(error));
  const run = worker.run();
  let value;
  try {
    value = await until(worker);
  } finally {
    await worker.shutdown();
    await run;
  }
  assert.deepEqual(warnings.map((error) => error.message), []);
  return value;
}

describe("operations", { concurrency: true }, () => {
  test("startOperation and reserve: a step's job carries its operation; getOperation shows plan and steps", async () => {
    const queue = unique();
    const name = opName("signup");
    const started = await client.startOperation(name, { main: ["account.create", "welcome.send"] },
      { globals: { user_id: 7 }, queue });
    assert.equal(typeof started.id, "string");
    assert.deepEqual(started, { id: started.id, state: "running", created: true });

    const [job] = await client.reserve(queue, { waitMs: 2000 });
    assert.equal(job.type, "account.create");
    assert.equal(job.queue, queue);
    assert.deepEqual(job.operation, { id: started.id, name, branch: "main", step: "account.create", index: 0, globals: { user_id: 7 } });

    const op = await client.getOperation(started.id);
    assert.equal(op.name, name);
    assert.equal(op.state, "running");
    assert.equal(op.queue, queue);
    assert.deepEqual(op.globals, { user_id: 7 });
    assert.equal(op.branch, "main");
    assert.equal(op.index, 0);
    assert.deepEqual(op.path, ["main"]);
    assert.ok(op.branches.main, JSON.stringify(op.branches));
    assert.deepEqual(op.steps.map((s) => [s.branch, s.index, s.type, s.state]),
      [["main", 0, "account.create", "running"], ["main", 1, "welcome.send", "unprocessed"]]);
    assert.equal(op.steps[0].job_id, job.id);

    assert.deepEqual(await client.ack(job.id, { account: 1 }, { set: { account_id: 11 } }), { ok: true });
    const [next] = await client.reserve(queue, { waitMs: 2000 });
    assert.equal(next.type, "welcome.send");
    assert.deepEqual(next.operation.globals, { user_id: 7, account_id: 11 });
    assert.equal(next.operation.index, 1);
    await client.ack(next.id);
    const done = await waitForOperation(started.id, "completed");
    assert.ok(done.finished_at);
    assert.deepEqual(done.steps.map((s) => s.state), ["completed", "completed"]);
    assert.deepEqual((await client.job(job.id)).result, { account: 1 });

    // An ordinary job has no operation.
    await client.enqueue("plain", [], { queue });
    const [plain] = await client.reserve(queue, { waitMs: 2000 });
    assert.equal(plain.operation, undefined);
    await client.ack(plain.id);
  });

  test("three steps on a Worker: step 1 sets a global, step 3 reads it", async () => {
    const queue = unique();
    const { id } = await client.startOperation(opName("three"), { main: ["three.one", "three.two", "three.three"] },
      { globals: { order: 42 }, queue });
    const seen = [];
    const op = await withWorker({
      queues: [queue],
      handlers: {
        "three.one": async (job) => { seen.push(job.operation); return new StepResult({ set: { token: "tok-1" }, result: "one" }); },
        "three.two": async (job) => { seen.push(job.operation); return "two"; },
        "three.three": async (job) => { seen.push(job.operation); return { saw: job.operation.globals.token }; },
      },
    }, () => waitForOperation(id, "completed"));
    assert.deepEqual(seen.map((o) => [o.step, o.index]), [["three.one", 0], ["three.two", 1], ["three.three", 2]]);
    assert.deepEqual(seen[0].globals, { order: 42 });
    assert.deepEqual(seen[2].globals, { order: 42, token: "tok-1" });
    assert.deepEqual(op.globals, { order: 42, token: "tok-1" });
    const results = await Promise.all(op.steps.map(async (s) => (await client.job(s.job_id)).result));
    assert.deepEqual(results, ["one", "two", { saw: "tok-1" }]);
  });

  test("jumpTo a branch, and back to main by {branch, step}", async () => {
    const queue = unique();
    const { id } = await client.startOperation(opName("jumps"), {
      main: ["jump.start", "jump.skipped", "jump.end"],
      refund: ["jump.refund", "jump.never"],
    }, { queue });
    const ran = [];
    const op = await withWorker({
      queues: [queue],
      handlers: {
        "jump.start": async () => { ran.push("start"); return new StepResult({ jumpTo: "refund" }); },
        "jump.skipped": async () => { ran.push("skipped"); },
        "jump.refund": async (job) => {
          ran.push(`refund@${job.operation.branch}`);
          return new StepResult({ set: { refunded: true }, jumpTo: { branch: "main", step: "jump.end" } });
        },
        "jump.never": async () => { ran.push("never"); },
        "jump.end": async (job) => { ran.push("end"); return job.operation.globals; },
      },
    }, () => waitForOperation(id, "completed"));
    assert.deepEqual(ran, ["start", "refund@refund", "end"]);
    assert.deepEqual(op.path, ["main", "refund", "main"]);
    assert.deepEqual(op.globals, { refunded: true });
    assert.deepEqual(op.steps.map((s) => `${s.branch}:${s.type}:${s.state}`),
      ["main:jump.start:completed", "refund:jump.refund:completed", "main:jump.end:completed"]);
    assert.deepEqual((await client.job(op.steps[2].job_id)).result, { refunded: true });
  });

  test("a parallel group of three runs at once, each step acked alone with its set; the join sees them all", async () => {
    const queue = unique();
    const { id } = await client.startOperation(opName("fanout"), {
      main: ["fan.before", { parallel: ["fan.a", "fan.b", { type: "fan.c", args: { which: "c" } }] }, "fan.join"],
    }, { queue });
    const allStarted = gate();
    let started = 0;
    const member = (name) => async (job) => {
      assert.equal(job.operation.index, 1);
      if (++started === 3) allStarted.open();
      await allStarted.promise; // all three running together, so they finish together
      return new StepResult({ set: { [name]: job.args?.which ?? name }, result: name });
    };
    let joined;
    const acks = [];
    const op = await withWorker({
      queues: [queue], concurrency: 3,
      handlers: {
        "fan.before": async () => new StepResult({ set: { before: true } }),
        "fan.a": member("a"), "fan.b": member("b"), "fan.c": member("c"),
        "fan.join": async (job) => { joined = job.operation; return "joined"; },
      },
    }, async (worker) => {
      // What the worker's client sends as acks: a step's set never rides in an ack with ids.
      const call = worker.client.call.bind(worker.client);
      worker.client.call = (method, params) => { if (method === "ack") acks.push(params); return call(method, params); };
      return waitForOperation(id, "completed");
    });
    assert.deepEqual(joined.globals, { before: true, a: "a", b: "b", c: "c" });
    assert.equal(joined.index, 2);
    assert.deepEqual(op.steps.map((s) => [s.index, s.member ?? null, s.type, s.state]), [
      [0, null, "fan.before", "completed"],
      [1, 0, "fan.a", "completed"], [1, 1, "fan.b", "completed"], [1, 2, "fan.c", "completed"],
      [2, null, "fan.join", "completed"],
    ]);
    const withSet = acks.filter((params) => "set" in params);
    assert.equal(withSet.length, 4);
    assert.ok(withSet.every((params) => typeof params.id === "string" && !("ids" in params)), JSON.stringify(acks));
  });

  test("a step failing at step 2, then retryOperation: completed steps do not run again", async () => {
    const queue = unique();
    const { id } = await client.startOperation(opName("flaky"), {
      main: ["flaky.one", { type: "flaky.two", max_attempts: 1 }, "flaky.three"],
    }, { globals: { n: 1 }, queue });
    const calls = { one: 0, two: 0, three: 0 };
    const failed = await withWorker({
      queues: [queue],
      handlers: {
        "flaky.one": async () => { calls.one++; return new StepResult({ set: { one: true } }); },
        "flaky.two": async () => { if (++calls.two === 1) throw new Error("card declined"); return "charged"; },
        "flaky.three": async (job) => { calls.three++; return job.operation.globals; },
      },
    }, async () => {
      const op = await waitForOperation(id, "failed");
      assert.equal(op.error.branch, "main");
      assert.equal(op.error.index, 1);
      assert.equal(op.error.type, "flaky.two");
      assert.match(op.error.message, /card declined/);
      assert.deepEqual(op.steps.map((s) => `${s.type}:${s.state}`), ["flaky.one:completed", "flaky.two:failed", "flaky.three:unprocessed"]);
      const retried = await client.retryOperation(id);
      assert.equal(retried.id, id);
      assert.equal(retried.state, "running");
      assert.equal(retried.job_ids.length, 1);
      return waitForOperation(id, "completed");
    });
    assert.deepEqual(calls, { one: 1, two: 2, three: 1 });
    assert.deepEqual(failed.globals, { n: 1, one: true });
    const two = failed.steps.filter((s) => s.type === "flaky.two");
    assert.deepEqual(two.map((s) => [s.state, s.retried ?? false]), [["failed", true], ["completed", false]]);
    await assert.rejects(client.retryOperation(id), { code: -32008, name: "wrong_state", data: { operation_id: id, state: "completed" } });
    // from: "start" runs a completed operation again with its first globals.
    const again = await client.retryOperation(id, { from: "start" });
    assert.equal(again.state, "running");
    const [first] = await client.reserve(queue, { waitMs: 2000 });
    assert.equal(first.type, "flaky.one");
    assert.deepEqual(first.operation.globals, { n: 1 });
    await client.ack(first.id);
  });

  test("startOperation with a key is idempotent; listOperations filters by name, state and globals", async () => {
    const queue = unique();
    const name = opName("billing");
    const key = unique("sub");
    const first = await client.startOperation(name, { main: ["bill.charge"] }, { globals: { subscription_id: key }, queue, key });
    assert.equal(first.created, true);
    const second = await client.startOperation(name, { main: ["bill.charge", "other"] }, { globals: { different: 1 }, queue, key });
    assert.deepEqual(second, { id: first.id, state: "running", created: false });
    const other = await client.startOperation(name, { main: ["bill.charge"] }, { globals: { subscription_id: "x" }, queue });
    assert.equal((await client.getOperation(first.id)).key, key);

    const byName = await client.listOperations({ name });
    assert.deepEqual(byName.operations.map((o) => o.id), [other.id, first.id]); // newest first
    assert.equal(byName.operations[0].steps, undefined);
    assert.equal(byName.operations[0].branches, undefined);
    const byGlobals = await client.listOperations({ globals: { subscription_id: key } });
    assert.deepEqual(byGlobals.operations.map((o) => o.id), [first.id]);
    const paged = await client.listOperations({ name, limit: 1 });
    assert.deepEqual(paged.operations.map((o) => o.id), [other.id]);
    const rest = await client.listOperations({ name, limit: 1, cursor: paged.next_cursor });
    assert.deepEqual(rest.operations.map((o) => o.id), [first.id]);
    assert.deepEqual((await client.listOperations({ name, state: "completed" })).operations, []);
    await assert.rejects(client.listOperations({ limit: 0 }), { code: -32602, field: "limit" });
  });

  test("set and jump_to go only with a step's ack: refusals with code and field", async () => {
    const queue = unique();
    const id = await client.enqueue("not.a.step", [], { queue });
    const [job] = await client.reserve(queue, { waitMs: 2000 });
    assert.equal(job.id, id);
    const refused = await client.ack(id, undefined, { set: { x: 1 } }).catch((e) => e);
    assert.ok(refused instanceof RPCError);
    assert.equal(refused.code, -32602);
    assert.equal(refused.name, "invalid_params");
    assert.equal(refused.field, "set");
    assert.equal(refused.data.field, "set");
    await assert.rejects(client.ack(id, undefined, { jumpTo: "refund" }), { code: -32602, field: "jump_to" });
    await assert.rejects(client.ack(id, undefined, { set: [1] }), { code: -32602, field: "set" });
    assert.equal((await client.job(id)).state, "reserved", "a refused ack changes nothing");
    // The same in an ack with ids: the broker refuses it (ackMany sends neither, so through call).
    await assert.rejects(client.call("ack", { ids: [id], set: { x: 1 } }), { code: -32602, field: "set" });
    await client.ack(id);

    const op = await client.startOperation(opName("strict"), { main: ["strict.one", "strict.two"], other: ["strict.three"] }, { queue });
    const [step] = await client.reserve(queue, { waitMs: 2000 });
    assert.equal(step.operation.id, op.id);
    await assert.rejects(client.ack(step.id, undefined, { jumpTo: "nowhere" }), { code: -32602, field: "jump_to" });
    await assert.rejects(client.ack(step.id, undefined, { jumpTo: { branch: "nowhere", step: "strict.two" } }), { code: -32602, field: "jump_to.branch" });
    await assert.rejects(client.ack(step.id, undefined, { jumpTo: { branch: "main", step: "strict.three" } }), { code: -32602, field: "jump_to.step" });
    assert.deepEqual(await client.ack(step.id, undefined, { jump_to: { branch: "other" } }), { ok: true }); // snake_case works too
    const [three] = await client.reserve(queue, { waitMs: 2000 });
    assert.equal(three.type, "strict.three");
    await client.ack(three.id);
    assert.deepEqual((await waitForOperation(op.id, "completed")).path, ["main", "other"]);

    await assert.rejects(client.getOperation("999999999"), { code: -32002, name: "not_found", data: { operation_id: "999999999" } });
    await assert.rejects(client.startOperation(opName("empty"), { main: [] }), { code: -32602 });
    assert.throws(() => new StepResult({ set: [1] }), TypeError);
    assert.throws(() => new StepResult({ jumpTo: { step: "x" } }), TypeError);
  });

  test("a Worker whose handler returns a StepResult with set for an ordinary job nacks it with the refusal", async () => {
    const queue = unique();
    const id = await client.enqueue("lonely", [], { queue, maxAttempts: 1 });
    const [, error, outcome] = await withWorker({
      queues: [queue], handlers: { lonely: async () => new StepResult({ set: { x: 1 } }) },
    }, (worker) => nextEvent(worker, "failed"));
    assert.equal(error.code, -32602);
    assert.equal(error.field, "set");
    assert.equal(outcome.state, "dead");
    const job = await client.job(id);
    assert.equal(job.state, "dead");
    assert.equal(job.errors[0].kind, "invalid_params");
  });

  test("cancelOperation: waiting steps are cancelled, a running one is stopped on its worker", async () => {
    const queue = unique();
    // Waiting: the first step's job was never reserved.
    const waiting = await client.startOperation(opName("cancel"), { main: ["cancel.one"] }, { queue: unique() });
    assert.deepEqual(await client.cancelOperation(waiting.id), { id: waiting.id, state: "cancelled", cancelled: 1, stopping: 0 });
    const gone = await client.getOperation(waiting.id);
    assert.equal(gone.state, "cancelled");
    assert.equal(gone.steps[0].state, "cancelled");
    await assert.rejects(client.cancelOperation(waiting.id), { code: -32008, name: "wrong_state", data: { operation_id: waiting.id, state: "cancelled" } });

    // Running: its Worker hears of it through extend, aborts the handler, and the job ends cancelled.
    const { id } = await client.startOperation(opName("cancel"), { main: ["cancel.long", "cancel.after"] }, { queue });
    const running = gate();
    let reason;
    let after = 0;
    await withWorker({
      queues: [queue], leaseMs: 1500,
      handlers: {
        "cancel.long": (job) => new Promise((_, reject) => {
          running.open(job);
          job.signal.addEventListener("abort", () => { reason = job.signal.reason; reject(reason); });
        }),
        "cancel.after": async () => { after++; },
      },
    }, async (worker) => {
      const cancelled = nextEvent(worker, "cancelled");
      const job = await running.promise;
      assert.deepEqual(await client.cancelOperation(id), { id, state: "cancelled", cancelled: 0, stopping: 1 });
      await cancelled;
      assert.equal(reason.name, "JobCancelled");
      await waitFor(async () => (await client.job(job.id)).state === "cancelled", { what: "the step's job to end cancelled" });
      await sleep(300);
    });
    assert.equal(after, 0);
    assert.equal((await client.getOperation(id)).state, "cancelled");
    // A cancelled operation can be resumed.
    const resumed = await client.retryOperation(id);
    assert.equal(resumed.state, "running");
    assert.equal(resumed.job_ids.length, 1);
    assert.equal((await client.job(resumed.job_ids[0])).type, "cancel.long");
    assert.equal((await client.cancelOperation(id)).state, "cancelled");
  });
});
