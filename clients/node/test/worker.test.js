// Worker against a real broker (GANTRY_URL); operators' orders come from a second client.
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { GantryClient, Worker, PermanentError } from "../src/index.js";
import { brokerUrl, unique, waitFor, nextEvent } from "../testing/helpers.js";

const url = brokerUrl();
const operator = new GantryClient({ url, name: "node-worker-test-operator" });
after(() => operator.close());

const settled = (job) => ["completed", "dead", "scheduled", "cancelled"].includes(job.state);
const waitForState = (id, states, timeoutMs = 10_000) =>
  waitFor(async () => { const job = await operator.job(id); return [].concat(states).includes(job.state) && job; },
    { timeoutMs, what: `job ${id} to be ${states}` });
const gate = () => { let open; const promise = new Promise((resolve) => { open = resolve; }); return { promise, open }; };
/** Resolves when `run` has ended, or "still running" after `ms`. */
const endedWithin = (run, ms) => Promise.race([run.then(() => "ended"), sleep(ms, "still running", { ref: false })]);

describe("Worker", { concurrency: true }, () => {
  test("completes jobs with the handler's result, up to `concurrency` at once, queues in order", async () => {
    const [high, low] = [unique(), unique()];
    const lowIds = await operator.enqueueBatch(Array.from({ length: 4 }, (_, n) => ({ type: "math.double", args: { n }, queue: low })));
    const highIds = await operator.enqueueBatch(Array.from({ length: 6 }, (_, n) => ({ type: "math.double", args: { n: 10 + n }, queue: high })));
    let running = 0, most = 0;
    const started = [];
    const worker = new Worker({
      url, queues: [high, low], concurrency: 3, id: unique("node-complete"),
      handlers: {
        "math.double": async (job) => {
          started.push(job.queue);
          most = Math.max(most, ++running);
          await sleep(150);
          running--;
          return { doubled: job.args.n * 2, attempt: job.attempt };
        },
      },
    });
    const completed = [];
    worker.on("completed", (job, result) => { completed.push(job.id); if (completed.length === 10) worker.shutdown(); });
    await worker.run();
    assert.equal(completed.length, 10);
    assert.equal(most, 3);
    assert.deepEqual(started.slice(0, 6), Array(6).fill(high), "the first queue is drained first");
    for (const [i, id] of [...highIds, ...lowIds].entries()) {
      const job = await operator.job(id);
      assert.equal(job.state, "completed");
      assert.deepEqual(job.result, { doubled: (i < 6 ? 10 + i : i - 6) * 2, attempt: 1 });
    }
  });

  test("jobs that finish together are acked together, in one ack with ids", async () => {
    const queue = unique();
    const count = 6;
    const ids = await operator.enqueueBatch(Array.from({ length: count }, (_, n) => ({ type: "together", args: { n }, queue })));
    // Every handler waits until all have started, so all finish at the same moment: the first is acked at once,
    // alone, and the others, finishing while that ack is on the way, in the next ack.
    const allStarted = gate();
    let started = 0;
    const worker = new Worker({ url, queues: [queue], concurrency: count, id: unique("node-acks"),
      handlers: { together: async (job) => { if (++started === count) allStarted.open(); await allStarted.promise; return { n: job.args.n }; } } });
    const run = worker.run();
    const acks = []; // the params of every ack the worker's client sends
    const call = worker.client.call.bind(worker.client);
    worker.client.call = (method, params) => { if (method === "ack") acks.push(params); return call(method, params); };
    const completed = [];
    worker.on("completed", (job) => { completed.push(job.id); if (completed.length === count) worker.shutdown(); });
    await run;
    assert.deepEqual(completed.sort(), [...ids].sort());
    assert.deepEqual(acks.map((params) => params.ids?.length ?? "alone"), ["alone", count - 1]);
    assert.deepEqual(Object.keys(acks[1].results).sort(), acks[1].ids.toSorted());
    for (const [n, id] of ids.entries()) {
      const job = await operator.job(id);
      assert.equal(job.state, "completed");
      assert.deepEqual(job.result, { n });
    }
  });

  test("nacks failures with message, kind and backtrace; buries PermanentErrors", async () => {
    const queue = unique();
    class InvalidEmail extends PermanentError {}
    class FlakyNetwork extends Error {}
    const ids = {
      type: await operator.enqueue("fails.type", [], { queue }),
      custom: await operator.enqueue("fails.custom", [], { queue }),
      permanent: await operator.enqueue("fails.permanent", [], { queue }),
      unknown: await operator.enqueue("no.such.handler", [], { queue }),
      thrownString: await operator.enqueue("fails.string", [], { queue }),
    };
    const worker = new Worker({
      url, queues: [queue], concurrency: 5, id: unique("node-fail"),
      handlers: {
        "fails.type": async (job) => job.args.no.such,
        "fails.custom": async () => { throw new FlakyNetwork("connection reset by peer"); },
        "fails.permanent": async () => { throw new InvalidEmail("not an email address: nobody"); },
        "fails.string": () => { throw "just a string"; }, // eslint-disable-line no-throw-literal
      },
    });
    const failed = [];
    worker.on("failed", (job, error, outcome) => { failed.push([job.id, outcome.state]); if (failed.length === 5) worker.shutdown(); });
    await worker.run();

    const type = await operator.job(ids.type);
    assert.equal(type.state, "scheduled");
    assert.equal(type.errors[0].kind, "TypeError");
    assert.match(type.errors[0].message, /Cannot read properties of undefined/);
    assert.equal(type.errors[0].reason, "nack");
    assert.ok(type.errors[0].backtrace.length > 0 && type.errors[0].backtrace.every((line) => line.startsWith("at ")));
    const custom = await operator.job(ids.custom);
    assert.equal(custom.state, "scheduled");
    assert.equal(custom.errors[0].kind, "FlakyNetwork");
    assert.equal(custom.errors[0].message, "connection reset by peer");
    const permanent = await operator.job(ids.permanent);
    assert.equal(permanent.state, "dead", "PermanentError: no retry");
    assert.equal(permanent.attempt, 1);
    assert.equal(permanent.max_attempts, 25);
    assert.equal(permanent.errors[0].kind, "InvalidEmail");
    assert.equal(permanent.errors[0].message, "not an email address: nobody");
    const unknown = await operator.job(ids.unknown);
    assert.equal(unknown.state, "scheduled");
    assert.equal(unknown.errors[0].kind, "UnknownJobType");
    const thrownString = await operator.job(ids.thrownString);
    assert.equal(thrownString.errors[0].message, "just a string");
  });

  test("extends running leases every third of the lease", async () => {
    const queue = unique();
    const id = await operator.enqueue("slow", [], { queue });
    const worker = new Worker({ url, queues: [queue], concurrency: 1, leaseMs: 1500, id: unique("node-extend"),
      handlers: { slow: async () => { await sleep(3500); return "outlived its lease"; } } });
    const lost = [];
    worker.on("lost", (job) => lost.push(job.id));
    worker.on("completed", () => worker.shutdown());
    const run = worker.run();
    const reserved = await waitForState(id, "reserved");
    await sleep(1800);
    const later = await operator.job(id);
    assert.equal(later.state, "reserved");
    assert.ok(later.lease_expires_at > reserved.lease_expires_at, "the lease was pushed out");
    await run;
    const job = await operator.job(id);
    assert.equal(job.state, "completed");
    assert.equal(job.result, "outlived its lease");
    assert.deepEqual(job.errors, []);
    assert.deepEqual(lost, []);
  });

  test("an operator's jobs.cancel aborts the running handler, and the job ends cancelled", async () => {
    const queue = unique();
    const id = await operator.enqueue("long", [], { queue });
    let reason;
    const worker = new Worker({ url, queues: [queue], concurrency: 1, leaseMs: 1500, id: unique("node-cancel"),
      handlers: {
        long: (job) => new Promise((_, reject) => job.signal.addEventListener("abort", () => { reason = job.signal.reason; reject(reason); })),
      } });
    const cancelled = nextEvent(worker, "cancelled");
    const run = worker.run();
    await waitForState(id, "reserved");
    assert.deepEqual(await operator.cancelJob(id), { id, state: "reserved" });
    await cancelled;
    assert.equal(reason.name, "JobCancelled");
    const job = await waitForState(id, "cancelled");
    assert.equal(job.errors.at(-1).kind, "JobCancelled");
    worker.shutdown();
    await run;
  });

  test("worker.quiet: finishes what it holds, reserves nothing more, keeps running until stopped", async () => {
    const queue = unique();
    const workerId = unique("node-quiet");
    const first = await operator.enqueue("gated", [], { queue });
    const release = gate();
    const worker = new Worker({ url, queues: [queue], concurrency: 2, waitMs: 500, id: workerId,
      handlers: { gated: async () => { await release.promise; return "finished after quiet"; } } });
    const run = worker.run();
    await waitForState(first, "reserved");
    const quiet = nextEvent(worker, "quiet");
    assert.equal(await operator.quietWorkers({ id: workerId }), 1);
    await quiet;
    assert.equal(worker.quiet, true);
    const second = await operator.enqueue("gated", [], { queue });
    release.open();
    assert.equal((await waitForState(first, "completed")).result, "finished after quiet");
    assert.equal(await endedWithin(run, 2000), "still running", "quiet is not stop");
    const untouched = await operator.job(second);
    assert.equal(untouched.state, "available");
    assert.equal(untouched.attempt, 0);
    const listed = (await operator.listWorkers()).find((w) => w.id === workerId);
    assert.equal(listed.state, "quiet");
    assert.equal(listed.jobs_held, 0);
    assert.equal(await operator.stopWorkers({ id: workerId }), 1);
    assert.equal(await endedWithin(run, 5000), "ended");
    assert.equal((await operator.job(second)).state, "available");
  });

  test("worker.stop: aborts running handlers, hands their jobs back at once, run() resolves", async () => {
    const queue = unique();
    const workerId = unique("node-stop");
    const [polite, stubborn] = await operator.enqueueBatch([{ type: "polite", queue }, { type: "stubborn", queue }]);
    const reasons = [];
    const worker = new Worker({ url, queues: [queue], concurrency: 4, id: workerId, handlers: {
      polite: (job) => new Promise((_, reject) => job.signal.addEventListener("abort", () => { reasons.push(job.signal.reason.name); reject(job.signal.reason); })),
      stubborn: () => sleep(60_000, "ignores its signal", { ref: false }),
    } });
    const handedBack = [];
    worker.on("handedBack", (job) => handedBack.push(job.id));
    const run = worker.run();
    await waitForState(polite, "reserved");
    await waitForState(stubborn, "reserved");
    const listed = (await operator.listWorkers()).find((w) => w.id === workerId);
    assert.deepEqual(listed.queues, [queue]);
    assert.equal(listed.concurrency, 4);
    assert.deepEqual(listed.handlers.sort(), ["polite", "stubborn"]);
    assert.equal(listed.jobs_held, 2);
    const stopping = Date.now();
    assert.equal(await operator.stopWorkers({ id: workerId }), 1);
    assert.equal(await endedWithin(run, 5000), "ended");
    assert.ok(Date.now() - stopping < 3000, `stopped in ${Date.now() - stopping} ms`);
    assert.deepEqual(reasons, ["WorkerStopped"]);
    assert.deepEqual(handedBack.sort(), [polite, stubborn].sort());
    for (const id of [polite, stubborn]) {
      const job = await operator.job(id);
      assert.equal(job.state, "available", "retry_in_ms 0: available at once");
      assert.equal(job.errors.at(-1).kind, "WorkerStopped");
      assert.equal(job.errors.at(-1).reason, "nack");
    }
    await waitFor(async () => !(await operator.listWorkers()).some((w) => w.id === workerId), { what: "the worker to disconnect" });
  });

  test("run() rejects when the broker refuses the worker for good", async () => {
    const worker = new Worker({ url, queues: ["not a queue name!"], id: unique("node-refused"), handlers: { t: async () => {} } });
    await assert.rejects(worker.run(), { code: -32602, name: "invalid_params" });
  });

  test("shutdown() lets running jobs finish, then run() resolves", async () => {
    const queue = unique();
    const id = await operator.enqueue("slowish", [], { queue });
    const started = gate();
    const worker = new Worker({ url, queues: [queue], concurrency: 1, id: unique("node-shutdown"),
      handlers: { slowish: async () => { started.open(); await sleep(500); return 42; } } });
    const run = worker.run();
    await started.promise;
    await worker.shutdown();
    assert.equal((await operator.job(id)).result, 42);
    await run;
  });
});
