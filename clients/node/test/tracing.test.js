// W3C trace context through meta: set at enqueue from the current span, and the job's span started from it in
// the worker (a child on attempt 1, a new trace linked to it on a retry). Against a real broker (GANTRY_URL),
// with a provider of the test's own and with openTelemetryTracing over a small stand-in for @opentelemetry/api
// (which is not installed here: the default must then do nothing, and fail nothing).
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { GantryClient, Worker, Hooks, PermanentError, openTelemetryTracing, parseTraceparent, formatTraceparent } from "../src/index.js";
import { brokerUrl, unique, nextEvent } from "../testing/helpers.js";

const url = brokerUrl();
const operator = new GantryClient({ url, name: "node-tracing-test-operator", tracing: false });
after(() => operator.close());
const TIMEOUT = { timeout: 30_000 };
const hex = (bytes) => randomBytes(bytes).toString("hex");

/**
 * A tracer of the test's own: spans live in an AsyncLocalStorage. `current()` gives the active span's context;
 * `runJob` starts the job's span as its `parent` says and records it in `spans`.
 */
function storageTracer() {
  const storage = new AsyncLocalStorage();
  const spans = [];
  return {
    spans,
    active: () => storage.getStore(),
    inSpan: (span, fn) => storage.run(span, fn),
    newSpan: (traceId = hex(16)) => ({ traceId, spanId: hex(8), flags: 1 }),
    provider: {
      current() {
        const span = storage.getStore();
        return span && { traceparent: formatTraceparent(span), tracestate: span.tracestate };
      },
      runJob(job, parent, run) {
        const remote = parseTraceparent(parent.traceparent);
        const span = {
          traceId: parent.relation === "child" ? remote.traceId : hex(16), spanId: hex(8), flags: 1,
          parentSpanId: parent.relation === "child" ? remote.spanId : undefined,
          links: parent.relation === "link" ? [{ ...remote, tracestate: parent.tracestate }] : [],
          attempt: parent.attempt, relation: parent.relation,
        };
        spans.push(span);
        return storage.run(span, run);
      },
    },
  };
}

/** Enough of @opentelemetry/api for openTelemetryTracing, with an AsyncLocalStorage as its context manager. */
function fakeOpenTelemetry() {
  const SPAN = Symbol("span");
  class Context {
    constructor(values = new Map()) { this.values = values; }
    getValue(key) { return this.values.get(key); }
    setValue(key, value) { return new Context(new Map(this.values).set(key, value)); }
  }
  const ROOT_CONTEXT = new Context();
  const storage = new AsyncLocalStorage();
  const started = [];
  const getSpanContext = (context) => context.getValue(SPAN)?.spanContext();
  const api = {
    ROOT_CONTEXT,
    SpanKind: { CONSUMER: 4 },
    SpanStatusCode: { ERROR: 2 },
    isSpanContextValid: (context) => /^[0-9a-f]{32}$/.test(context.traceId) && !/^0+$/.test(context.traceId),
    createTraceState: (raw) => ({ serialize: () => raw }),
    context: {
      active: () => storage.getStore() ?? ROOT_CONTEXT,
      with: (context, fn) => storage.run(context, fn),
    },
    trace: {
      getSpanContext,
      setSpanContext: (context, spanContext) => context.setValue(SPAN, { spanContext: () => spanContext }),
      getTracer: () => ({
        startActiveSpan(name, options, context, fn) {
          const parent = options.root ? undefined : getSpanContext(context);
          const spanContext = { traceId: parent?.traceId ?? hex(16), spanId: hex(8), traceFlags: 1 };
          const span = { name, options, parent, events: [], spanContext: () => spanContext,
            recordException(error) { this.events.push(["exception", error]); },
            setStatus(status) { this.status = status; }, end() { this.ended = true; } };
          started.push(span);
          return storage.run(context.setValue(SPAN, span), () => fn(span));
        },
      }),
    },
  };
  return { api, started };
}

describe("traceparent", () => {
  test("parse and format W3C traceparent", () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736", spanId = "00f067aa0ba902b7";
    assert.deepEqual(parseTraceparent(`00-${traceId}-${spanId}-01`), { version: "00", traceId, spanId, flags: 1 });
    assert.equal(formatTraceparent({ traceId, spanId, flags: 1 }), `00-${traceId}-${spanId}-01`);
    for (const bad of [`ff-${traceId}-${spanId}-01`, `00-${"0".repeat(32)}-${spanId}-01`, `00-${traceId}-${"0".repeat(16)}-01`,
      `00-${traceId.toUpperCase()}-${spanId}-01`, `00-${traceId}-${spanId}-01-extra`, "", undefined, 42]) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
    assert.ok(parseTraceparent(`01-${traceId}-${spanId}-01-future`), "a later version may carry more");
    assert.throws(() => formatTraceparent({ traceId: "abc", spanId }), TypeError);
  });
});

describe("at enqueue", { concurrency: true }, () => {
  test("meta gets traceparent and tracestate from the current span, on enqueue and enqueueBatch", TIMEOUT, async () => {
    const queue = unique();
    const tracer = storageTracer();
    const client = new GantryClient({ url, tracing: tracer.provider });
    try {
      const span = { ...tracer.newSpan(), tracestate: "vendor=abc" };
      const [id, ids, outside] = await tracer.inSpan(span, async () => [
        await client.enqueue("traced", [], { queue, meta: { request: "r1" } }),
        await client.enqueueBatch([{ type: "traced", queue }, { type: "traced", queue, meta: { n: 2 } }]),
        await tracer.inSpan(undefined, () => client.enqueue("untraced", [], { queue })),
      ]);
      const traceparent = formatTraceparent(span);
      assert.deepEqual((await operator.job(id)).meta, { request: "r1", traceparent, tracestate: "vendor=abc" });
      assert.deepEqual((await operator.job(ids[0])).meta, { traceparent, tracestate: "vendor=abc" });
      assert.deepEqual((await operator.job(ids[1])).meta, { n: 2, traceparent, tracestate: "vendor=abc" });
      assert.deepEqual((await operator.job(outside)).meta, {}, "no current span: nothing set");
    } finally {
      client.close();
    }
  });

  test("never overwrites what the caller set; an empty tracestate is left out", TIMEOUT, async () => {
    const queue = unique();
    const tracer = storageTracer();
    const client = new GantryClient({ url, tracing: tracer.provider });
    const own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    try {
      const [kept, stateKept, empty] = await tracer.inSpan({ ...tracer.newSpan(), tracestate: "vendor=abc" }, async () => [
        await client.enqueue("traced", [], { queue, meta: { traceparent: own } }),
        await client.enqueue("traced", [], { queue, meta: { tracestate: "mine=1" } }),
        await tracer.inSpan({ ...tracer.newSpan(), tracestate: "" }, () => client.enqueue("traced", [], { queue })),
      ]);
      assert.deepEqual((await operator.job(kept)).meta, { traceparent: own }, "the caller's traceparent, and no tracestate of ours");
      const withState = (await operator.job(stateKept)).meta;
      assert.equal(withState.tracestate, "mine=1");
      assert.ok(parseTraceparent(withState.traceparent));
      assert.deepEqual(Object.keys((await operator.job(empty)).meta), ["traceparent"]);
    } finally {
      client.close();
    }
  });

  test("a provider that throws or gives no W3C traceparent reaches onFatalError; the job is enqueued untraced", TIMEOUT, async () => {
    const queue = unique();
    const fatal = [];
    const hooks = new Hooks({ onFatalError: (error, context) => fatal.push([error.message, context.source]) });
    const broken = new GantryClient({ url, hooks, tracing: { current: () => { throw new Error("tracer down"); } } });
    const garbled = new GantryClient({ url, hooks, tracing: { current: () => ({ traceparent: "not-a-traceparent" }) } });
    try {
      for (const client of [broken, garbled]) assert.deepEqual((await operator.job(await client.enqueue("traced", [], { queue }))).meta, {});
      assert.deepEqual(fatal.map(([message, source]) => [message.slice(0, 20), source]),
        [["tracer down", "tracing"], ["The trace context pr", "tracing"]]);
    } finally {
      broken.close();
      garbled.close();
    }
  });

  test("without @opentelemetry/api and without a provider, nothing is set and nothing fails", TIMEOUT, async (t) => {
    const installed = await import("@opentelemetry/api").then(() => true, () => false);
    if (installed) return t.skip("@opentelemetry/api is installed here");
    const queue = unique();
    const client = new GantryClient({ url });
    try {
      assert.deepEqual((await operator.job(await client.enqueue("plain", [], { queue, meta: { a: 1 } }))).meta, { a: 1 });
      assert.throws(() => new GantryClient({ url, tracing: "otel" }), TypeError);
    } finally {
      client.close();
    }
  });
});

/**
 * Enqueues one job inside `span` with `client`, lets `worker` fail it on attempt 1 (a PermanentError, so that
 * jobs.retry can bring it back at once instead of waiting out the backoff), retries it, and resolves what the
 * handler saw on each attempt: `seen(job)`'s value.
 */
async function failOnceThenSucceed({ client, inSpan, makeWorker, seen }) {
  const queue = unique();
  const observed = [];
  const worker = makeWorker({ url, queues: [queue], concurrency: 1, id: unique("node-tracing"), handlers: {
    "traced.flaky": async (job) => {
      observed.push({ attempt: job.attempt, ...seen(job) });
      if (job.attempt === 1) throw new PermanentError("fails once");
      return "second time lucky";
    },
  } });
  const run = worker.run();
  try {
    const id = await inSpan(() => client.enqueue("traced.flaky", [], { queue }));
    await nextEvent(worker, "failed", 15_000);
    await operator.retryJob(id);
    await nextEvent(worker, "completed", 15_000);
    return { id, observed, meta: (await operator.job(id)).meta };
  } finally {
    worker.shutdown();
    await run;
  }
}

describe("in the worker", { concurrency: true }, () => {
  test("a provider: the job's span is a child of the enqueue's on attempt 1, a new trace linked to it on attempt 2", TIMEOUT, async () => {
    const producer = storageTracer();
    const consumer = storageTracer();
    const client = new GantryClient({ url, tracing: producer.provider });
    const span = { ...producer.newSpan(), tracestate: "vendor=abc" };
    try {
      const { observed, meta } = await failOnceThenSucceed({
        client, inSpan: (fn) => producer.inSpan(span, fn),
        makeWorker: (options) => new Worker({ ...options, tracing: consumer.provider }),
        seen: () => ({ ...consumer.active() }),
      });
      assert.equal(meta.traceparent, formatTraceparent(span));
      assert.equal(meta.tracestate, "vendor=abc");
      const [first, second] = observed;
      assert.equal(first.attempt, 1);
      assert.equal(first.relation, "child");
      assert.equal(first.traceId, span.traceId, "attempt 1 is in the enqueue's trace");
      assert.equal(first.parentSpanId, span.spanId, "and its parent is the enqueue's span");
      assert.equal(second.attempt, 2);
      assert.equal(second.relation, "link");
      assert.notEqual(second.traceId, span.traceId, "a retry is a new trace");
      assert.equal(second.parentSpanId, undefined);
      assert.deepEqual(second.links.map((link) => [link.traceId, link.spanId, link.tracestate]), [[span.traceId, span.spanId, "vendor=abc"]]);
      assert.equal(consumer.spans.length, 2);
    } finally {
      client.close();
    }
  });

  test("openTelemetryTracing: the same through OpenTelemetry's API, with the span's status and exception", TIMEOUT, async () => {
    const { api, started } = fakeOpenTelemetry();
    const otel = openTelemetryTracing(api);
    const client = new GantryClient({ url, tracing: otel });
    let enqueueSpan;
    try {
      const { id, observed, meta } = await failOnceThenSucceed({
        client,
        inSpan: (fn) => api.trace.getTracer().startActiveSpan("http request", {}, api.ROOT_CONTEXT, (span) => { enqueueSpan = span; return fn(); }),
        makeWorker: (options) => new Worker({ ...options, tracing: otel }),
        seen: () => ({ ...api.trace.getSpanContext(api.context.active()) }),
      });
      const parent = enqueueSpan.spanContext();
      assert.equal(meta.traceparent, `00-${parent.traceId}-${parent.spanId}-01`);
      const [first, second] = started.filter((span) => span.name === "process traced.flaky");
      assert.equal(first.parent.traceId, parent.traceId);
      assert.equal(first.parent.spanId, parent.spanId);
      assert.equal(first.parent.isRemote, true);
      assert.equal(first.options.kind, 4);
      assert.equal(first.options.attributes["messaging.message.id"], id);
      assert.equal(first.options.attributes["gantry.job.attempt"], 1);
      assert.equal(first.status.code, 2, "a failed attempt's span is an error");
      assert.equal(first.events[0][1].message, "fails once");
      assert.ok(first.ended);
      assert.equal(second.options.root, true);
      assert.equal(second.parent, undefined);
      assert.deepEqual(second.options.links.map((link) => [link.context.traceId, link.context.spanId]), [[parent.traceId, parent.spanId]]);
      assert.equal(second.status, undefined);
      assert.ok(second.ended);
      assert.deepEqual(observed.map((seen) => seen.spanId), [first.spanContext().spanId, second.spanContext().spanId],
        "the handler runs with the job's span active");
    } finally {
      client.close();
    }
  });

  test("a job without a traceparent gets a root span; a provider that throws changes no job's outcome", TIMEOUT, async () => {
    const queue = unique();
    const tracer = storageTracer();
    const fatal = [];
    const [plain, second] = await operator.enqueueBatch([{ type: "plain", queue }, { type: "plain", queue }]);
    let calls = 0;
    const flaky = { runJob: (job, parent, run) => {
      calls += 1;
      if (calls === 1) return tracer.provider.runJob(job, parent, run);
      throw new Error("tracer down");
    } };
    const worker = new Worker({ url, queues: [queue], concurrency: 1, id: unique("node-tracing-root"), tracing: flaky,
      hooks: { onFatalError: (error, context) => fatal.push([error.message, context.source, context.job.id]) },
      handlers: { plain: async () => "ran" } });
    let completed = 0;
    worker.on("completed", () => { if (++completed === 2) worker.shutdown(); });
    await worker.run();
    assert.deepEqual(tracer.spans.map((span) => span.relation), ["root"]);
    assert.equal((await operator.job(plain)).result, "ran");
    assert.equal((await operator.job(second)).result, "ran", "run untraced when the provider failed before starting it");
    assert.deepEqual(fatal.map(([message, source]) => [message, source]), [["tracer down", "tracing"]]);
    assert.ok([plain, second].includes(fatal[0][2]), "with the job it was starting");
  });
});
