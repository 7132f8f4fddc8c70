// The Worker's batched acks against a scripted fake broker, for answers a real one cannot be made to give on
// demand: a lease lost just as a batch of acks arrives, and a broker older than `ack` with `ids`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "../src/index.js";
import { fakeBroker, ok, refuse } from "../testing/fake_broker.js";

const gate = () => { let open; const promise = new Promise((resolve) => { open = resolve; }); return { promise, open }; };
const reserved = (id, type) => ({ id, type, args: { n: Number(id) }, queue: "q", priority: 0, attempt: 1, max_attempts: 25, meta: {} });

/**
 * A broker that hands out `jobs` at the first reserve (later reserves get no answer: the worker is left
 * long-polling until it shuts down) and answers each ack with `ack(request)`. Nothing else is expected.
 */
function workerBroker(jobs, ack) {
  let handedOut = false;
  return fakeBroker({
    answer: (request) => {
      if (request.method === "reserve") {
        if (handedOut) return [];
        handedOut = true;
        return [ok(request, { jobs })];
      }
      if (request.method === "ack") return [ack(request)];
      return [refuse(request, { code: -32601, message: `the fake broker does not expect ${request.method}` })];
    },
  });
}

const acksSeen = (broker) => broker.seen.filter((r) => r.method === "ack").map((r) => r.params);

test("a job answered in an ack's lost is handled as a single ack's lease_lost or not_found: a warning, no nack", async () => {
  const lost = { 3: "available", 4: undefined }; // job 4: no such job, so no state
  const broker = await workerBroker(["1", "2", "3", "4"].map((id) => reserved(id, "t")), (request) => {
    const { ids } = request.params;
    return ok(request, ids
      ? { ok: false, acked: ids.filter((id) => !(id in lost)), lost: ids.filter((id) => id in lost).map((id) => ({ id, state: lost[id] })) }
      : { ok: true });
  });
  // All four finish at once: 1 is acked alone, 2, 3 and 4 together while that ack is on the way.
  const allStarted = gate();
  let started = 0;
  const worker = new Worker({ url: broker.url, queues: ["q"], concurrency: 4,
    handlers: { t: async (job) => { if (++started === 4) allStarted.open(); await allStarted.promise; return job.args.n; } } });
  const completed = [], warnings = [];
  const finished = () => { if (completed.length + warnings.length === 4) worker.shutdown(); };
  worker.on("completed", (job, result) => { completed.push([job.id, result]); finished(); });
  worker.on("warning", (error, job) => { warnings.push([job?.id, error]); finished(); });
  const lostEvents = [];
  worker.on("lost", (job) => lostEvents.push(job.id));
  try {
    await worker.run();
    assert.deepEqual(acksSeen(broker), [{ id: "1", result: 1 }, { ids: ["2", "3", "4"], results: { 2: 2, 3: 3, 4: 4 } }]);
    assert.deepEqual(completed.sort(), [["1", 1], ["2", 2]]);
    const [[three, leaseLost], [four, notFound]] = warnings.sort();
    assert.equal(three, "3");
    assert.deepEqual({ code: leaseLost.code, name: leaseLost.name, data: leaseLost.data, method: leaseLost.method },
      { code: -32003, name: "lease_lost", data: { id: "3", state: "available" }, method: "ack" });
    assert.equal(four, "4");
    assert.deepEqual({ code: notFound.code, name: notFound.name, data: notFound.data }, { code: -32002, name: "not_found", data: { id: "4" } });
    assert.ok(!broker.seen.some((r) => r.method === "nack"), "a lost job is neither acked again nor nacked");
    assert.deepEqual(lostEvents, [], "`lost` is for leases an extend reports lost, while the job runs");
  } finally {
    broker.close();
  }
});

test("a broker that refuses ack with ids (older than it): those acks go alone, and every ack after them", async () => {
  const jobs = [...["1", "2", "3"].map((id) => reserved(id, "first")), ...["4", "5", "6"].map((id) => reserved(id, "second"))];
  const broker = await workerBroker(jobs, (request) => (request.params.ids
    ? refuse(request, { code: -32602, message: "Invalid params: ids is not a field of this method (fields: id, result).", data: { field: "ids" } })
    : ok(request, { ok: true })));
  const allStarted = gate(), secondRound = gate();
  let started = 0;
  const begin = async () => { if (++started === 6) allStarted.open(); await allStarted.promise; };
  const worker = new Worker({ url: broker.url, queues: ["q"], concurrency: 6, handlers: {
    first: async (job) => { await begin(); return job.args.n; },
    second: async (job) => { await begin(); await secondRound.promise; return job.args.n; },
  } });
  const completed = [];
  worker.on("completed", (job) => {
    completed.push(job.id);
    if (completed.length === 3) secondRound.open(); // jobs 4, 5 and 6 finish together once the first three are acked
    if (completed.length === 6) worker.shutdown();
  });
  const warnings = [];
  worker.on("warning", (error, job) => warnings.push(`${job?.id}: ${error.message}`));
  try {
    await worker.run();
    assert.deepEqual(warnings, []);
    assert.deepEqual(completed.slice(0, 3).sort(), ["1", "2", "3"]);
    assert.deepEqual(completed.slice(3).sort(), ["4", "5", "6"]);
    const acks = acksSeen(broker);
    // 1 alone; 2 and 3 together, refused, then each alone; then 4, 5 and 6 each alone without trying ids again.
    assert.deepEqual(acks.slice(0, 4), [{ id: "1", result: 1 }, { ids: ["2", "3"], results: { 2: 2, 3: 3 } }, { id: "2", result: 2 }, { id: "3", result: 3 }]);
    assert.deepEqual(acks.slice(4).sort((a, b) => a.id.localeCompare(b.id)), [{ id: "4", result: 4 }, { id: "5", result: 5 }, { id: "6", result: 6 }]);
  } finally {
    broker.close();
  }
});
