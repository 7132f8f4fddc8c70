// Hooks: the list is proto-json/hooks.json's; enqueue hooks against a real broker (GANTRY_URL), job and
// lifecycle hooks on a Worker, and what a hook that throws does.
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { GantryClient, Worker, Hooks, HOOK_NAMES, PermanentError, RPCError } from "../src/index.js";
import { brokerUrl, unique, waitFor } from "../testing/helpers.js";

const url = brokerUrl();
const operator = new GantryClient({ url, name: "node-hooks-test-operator" });
after(() => operator.close());

const hooksJson = JSON.parse(readFileSync(new URL("../../../proto-json/hooks.json", import.meta.url), "utf8"));
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const TIMEOUT = { timeout: 30_000 };

/** A Hooks whose onFatalError records [error, context], and a logger that records what would be logged. */
function recordingHooks() {
  const fatal = [];
  const logged = [];
  const hooks = new Hooks({ onFatalError: (error, context) => { fatal.push([error, context]); } });
  hooks.logger = { error: (...args) => logged.push(args) };
  return { hooks, fatal, logged };
}

describe("the hook names", () => {
  test("are exactly proto-json/hooks.json's, in lowerCamelCase and in its order", () => {
    assert.deepEqual(HOOK_NAMES, hooksJson.hooks.map((hook) => camel(hook.name)));
  });

  test("each is a method adding a function, on a client's and a worker's hooks; nothing else is a hook", () => {
    const client = new GantryClient({ url });
    const worker = new Worker({ url, queues: ["q"] });
    for (const hooks of [client.hooks, worker.hooks]) {
      for (const name of HOOK_NAMES) {
        const fn = () => {};
        assert.equal(hooks[name](fn), hooks, `${name} is chainable`);
        assert.deepEqual(hooks.get(name), [fn]);
      }
    }
    assert.throws(() => new Hooks({ beforeEnqeue: () => {} }), { name: "TypeError", message: /no hook "beforeEnqeue"/ });
    assert.throws(() => new Hooks({ before_enqueue: () => {} }), /no hook "before_enqueue"/); // Node spells them in camelCase
    assert.throws(() => new Hooks({ afterJob: "not a function" }), /must be a function/);
    assert.throws(() => client.hooks.add("onError", () => {}), /no hook "onError"/);
  });

  test("the constructor option takes a function or a list per name; a Hooks passed is shared, not copied", () => {
    const a = () => {}, b = () => {}, c = () => {};
    const client = new GantryClient({ url, hooks: { beforeEnqueue: [a, b], afterEnqueue: c } });
    assert.deepEqual(client.hooks.get("beforeEnqueue"), [a, b]);
    assert.deepEqual(client.hooks.get("afterEnqueue"), [c]);
    const shared = new Hooks();
    const worker = new Worker({ url, queues: ["q"], hooks: shared });
    const other = new GantryClient({ url, hooks: shared });
    shared.onFatalError(a);
    assert.equal(worker.hooks, shared);
    assert.equal(other.hooks, shared);
  });
});

describe("enqueue hooks", { concurrency: true }, () => {
  test("before, around (first added outermost) and after fire in order; before may change the job", TIMEOUT, async () => {
    const queue = unique();
    const order = [];
    const client = new GantryClient({ url, hooks: {
      beforeEnqueue: [
        (job) => { order.push(`before 1 ${job.type}`); job.options.queue = queue; },
        (job) => { order.push("before 2"); job.args = { ...job.args, stamped: true }; job.options.tags = ["hooked"]; },
      ],
    } });
    client.hooks
      .aroundEnqueue(async (job, next) => { order.push("around 1 in"); const id = await next(); order.push(`around 1 out ${typeof id}`); return id; })
      .aroundEnqueue(async (job, next) => { order.push("around 2 in"); const id = await next(); order.push("around 2 out"); return id; })
      .afterEnqueue((job, id) => { order.push(`after ${job.args.stamped} ${id === job.id}`); });
    try {
      const id = await client.enqueue("hooked.job", { n: 1 }, { queue: "not-this-one" });
      assert.deepEqual(order, ["before 1 hooked.job", "before 2", "around 1 in", "around 2 in", "around 2 out",
        "around 1 out string", "after true false"]);
      const job = await operator.job(id);
      assert.equal(job.queue, queue);
      assert.deepEqual(job.args, { n: 1, stamped: true });
      assert.deepEqual(job.tags, ["hooked"]);
    } finally {
      client.close();
    }
  });

  test("enqueueBatch: every job goes through every hook, each around's next() resolving that job's id", TIMEOUT, async () => {
    const queue = unique();
    const seen = [];
    const client = new GantryClient({ url, hooks: {
      beforeEnqueue: (job) => { seen.push(`before ${job.args.n}`); job.options.priority = 10 + job.args.n; },
      aroundEnqueue: async (job, next) => { seen.push(`in ${job.args.n}`); const id = await next(); seen.push(`out ${job.args.n} ${id}`); return id; },
      afterEnqueue: (job, id) => { seen.push(`after ${job.args.n} ${id}`); },
    } });
    try {
      const ids = await client.enqueueBatch([0, 1, 2].map((n) => ({ type: "hooked.batch", args: { n }, queue })));
      assert.deepEqual(seen, ["before 0", "before 1", "before 2", "in 0", "in 1", "in 2",
        `out 2 ${ids[2]}`, `out 1 ${ids[1]}`, `out 0 ${ids[0]}`, `after 0 ${ids[0]}`, `after 1 ${ids[1]}`, `after 2 ${ids[2]}`]);
      for (const [n, id] of ids.entries()) assert.equal((await operator.job(id)).priority, 10 + n);
    } finally {
      client.close();
    }
  });

  test("a before or around hook that throws rejects the enqueue (nothing is sent) and reaches onFatalError", TIMEOUT, async () => {
    const queue = unique();
    const { hooks, fatal } = recordingHooks();
    const boom = new Error("the before hook broke");
    let failBefore = true;
    hooks.beforeEnqueue(() => { if (failBefore) throw boom; });
    const client = new GantryClient({ url, hooks });
    const sent = [];
    const call = client.call.bind(client);
    client.call = (method, params) => { sent.push(method); return call(method, params); };
    try {
      await assert.rejects(client.enqueue("never.sent", [], { queue }), boom);
      await assert.rejects(client.enqueueBatch([{ type: "never.sent", queue }]), boom);
      assert.deepEqual(fatal.map(([error, context]) => [error, context.source, context.hook, context.job.type, context.client]),
        [[boom, "hook", "beforeEnqueue", "never.sent", client], [boom, "hook", "beforeEnqueue", "never.sent", client]]);

      failBefore = false;
      hooks.aroundEnqueue(async () => "forgot next()");
      await assert.rejects(client.enqueue("never.sent", [], { queue }), { name: "HookError", message: /aroundEnqueue hook .* without calling next/ });
      assert.equal(fatal[2][1].hook, "aroundEnqueue");
      assert.deepEqual(sent, [], "nothing was sent");
      assert.deepEqual((await operator.listJobs({ queue })).jobs, []);
    } finally {
      client.close();
    }
  });

  test("the broker's refusal passes through around hooks without being reported as theirs", TIMEOUT, async () => {
    const { hooks, fatal } = recordingHooks();
    let seen;
    hooks.aroundEnqueue(async (job, next) => { try { return await next(); } catch (error) { seen = error; throw error; } });
    const client = new GantryClient({ url, hooks });
    try {
      await assert.rejects(client.enqueue("bad.priority", [], { queue: unique(), priority: 0 }), { code: -32602, field: "priority" });
      assert.ok(seen instanceof RPCError);
      assert.deepEqual(fatal, []);
    } finally {
      client.close();
    }
  });

  test("an after hook that throws does not fail the enqueue; an error inside onFatalError is logged", TIMEOUT, async () => {
    const queue = unique();
    const { hooks, fatal, logged } = recordingHooks();
    const late = new Error("the after hook broke");
    const inner = new Error("the error tracker is down");
    hooks.afterEnqueue(() => { throw late; }).afterEnqueue((job, id) => { job.reached = id; });
    hooks.onFatalError(() => { throw inner; });
    const client = new GantryClient({ url, hooks });
    try {
      const id = await client.enqueue("after.fails", [], { queue });
      assert.equal((await operator.job(id)).state, "available");
      assert.equal(fatal.length, 1);
      assert.equal(fatal[0][0], late);
      assert.equal(fatal[0][1].hook, "afterEnqueue");
      assert.equal(logged.length, 1);
      assert.ok(logged[0].includes(inner) && logged[0].includes(late), "both the failure and what it was reporting are logged");
    } finally {
      client.close();
    }
  });

  test("with no onFatalError hook, a hook's error is logged, never dropped", TIMEOUT, async () => {
    const hooks = new Hooks({ afterEnqueue: () => { throw new Error("nobody listens"); } });
    const logged = [];
    hooks.logger = { error: (...args) => logged.push(args) };
    const client = new GantryClient({ url, hooks });
    try {
      await client.enqueue("after.fails", [], { queue: unique() });
      assert.equal(logged.length, 1);
      assert.match(logged[0][0], /afterEnqueue hook failed/);
      assert.equal(logged[0][1].message, "nobody listens");
    } finally {
      client.close();
    }
  });
});

describe("job and lifecycle hooks", { concurrency: true }, () => {
  test("fire in order; a failing job reaches onJobFailure with its error before the nack", TIMEOUT, async () => {
    const [first, second] = [unique(), unique()];
    const [good, bad] = await operator.enqueueBatch([
      { type: "hooked.ok", args: { n: 2 }, queue: first },
      { type: "hooked.fails", args: {}, queue: second },
    ]);
    const order = [];
    let stateAtFailure;
    const worker = new Worker({ url, queues: [first, second], concurrency: 1, id: unique("node-hooks"), handlers: {
      "hooked.ok": async (job) => { order.push(`handler ${job.type} ${job.stamp}`); return job.args.n * 2; },
      "hooked.fails": async () => { order.push("handler hooked.fails"); throw new TypeError("the handler broke"); },
    } });
    worker.hooks
      .beforeStartup((w) => order.push(`beforeStartup ${w === worker} ${worker.client.session === null}`))
      .afterStartup((w) => order.push(`afterStartup ${Boolean(w.client.session)}`))
      .beforeJob((job) => { order.push(`beforeJob ${job.type}`); job.stamp = "stamped"; })
      .aroundJob(async (job, next) => { order.push("around 1 in"); const result = await next(); order.push(`around 1 out ${result}`); return result; })
      .aroundJob(async (job, next) => { order.push("around 2 in"); try { return await next(); } finally { order.push("around 2 out"); } })
      .afterJob((job, outcome) => order.push(`afterJob ${job.type} ${outcome.state} ${outcome.result ?? outcome.error.message}`))
      .onJobFailure(async (job, error) => {
        stateAtFailure = (await operator.job(job.id)).state;
        order.push(`onJobFailure ${job.type} ${error.name}`);
      })
      .beforeShutdown(() => order.push(`beforeShutdown ${worker.client !== null}`))
      .afterShutdown(() => order.push(`afterShutdown ${worker.client === null}`))
      .onFatalError((error, context) => order.push(`onFatalError ${context.hook} ${error.message}`));
    worker.on("failed", () => worker.shutdown());
    await worker.run();
    assert.deepEqual(order, [
      "beforeStartup true true", "afterStartup true",
      "beforeJob hooked.ok", "around 1 in", "around 2 in", "handler hooked.ok stamped", "around 2 out", "around 1 out 4",
      "afterJob hooked.ok completed 4",
      "beforeJob hooked.fails", "around 1 in", "around 2 in", "handler hooked.fails", "around 2 out",
      "afterJob hooked.fails failed the handler broke", "onJobFailure hooked.fails TypeError",
      "beforeShutdown true", "afterShutdown true",
    ]);
    assert.equal(stateAtFailure, "reserved", "onJobFailure runs before the nack");
    assert.equal((await operator.job(good)).result, 4);
    const failed = await operator.job(bad);
    assert.equal(failed.state, "scheduled");
    assert.equal(failed.errors[0].kind, "TypeError");
  });

  test("a throwing beforeJob or aroundJob fails the job like its handler; a throwing afterJob changes nothing", TIMEOUT, async () => {
    const queue = unique();
    const ids = await operator.enqueueBatch([
      { type: "before.breaks", queue }, { type: "around.breaks", queue }, { type: "around.skips", queue }, { type: "after.breaks", queue },
    ]);
    const { hooks, fatal } = recordingHooks();
    const ran = [];
    const failures = [];
    class Refused extends PermanentError {}
    hooks
      .beforeJob((job) => { if (job.type === "before.breaks") throw new Refused("before refused it"); })
      .aroundJob(async (job, next) => {
        if (job.type === "around.breaks") throw new Error("around broke");
        if (job.type === "around.skips") return "never ran";
        return next();
      })
      .afterJob((job) => { if (job.type === "after.breaks") throw new Error("after broke"); })
      .onJobFailure((job, error) => failures.push([job.type, error.message]));
    const handler = async (job) => { ran.push(job.type); return "done"; };
    const worker = new Worker({ url, queues: [queue], concurrency: 4, id: unique("node-hook-errors"), hooks,
      handlers: Object.fromEntries(["before.breaks", "around.breaks", "around.skips", "after.breaks"].map((type) => [type, handler])) });
    let settled = 0;
    const done = () => { if (++settled === 4) worker.shutdown(); };
    worker.on("failed", done).on("completed", done);
    await worker.run();

    assert.deepEqual(ran, ["after.breaks"], "a job whose before or around hook failed never reached its handler");
    const [before, around, skips, afterBreaks] = await Promise.all(ids.map((id) => operator.job(id)));
    assert.equal(before.state, "dead", "a PermanentError from beforeJob buries the job, as from a handler");
    assert.equal(before.errors[0].kind, "Refused");
    assert.equal(around.state, "scheduled");
    assert.equal(around.errors[0].message, "around broke");
    assert.equal(skips.state, "scheduled");
    assert.equal(skips.errors[0].kind, "HookError");
    assert.equal(afterBreaks.state, "completed");
    assert.equal(afterBreaks.result, "done");
    assert.deepEqual(failures.sort(), [["around.breaks", "around broke"], ["around.skips", skips.errors[0].message],
      ["before.breaks", "before refused it"]]);
    assert.deepEqual(fatal.map(([error, context]) => `${context.source} ${context.hook} ${context.job.type} ${error.message}`).sort(), [
      "hook afterJob after.breaks after broke",
      "hook aroundJob around.breaks around broke",
      `hook aroundJob around.skips ${skips.errors[0].message}`,
      "hook beforeJob before.breaks before refused it",
    ]);
  });

  test("a throwing beforeStartup: run() rejects before connecting; other lifecycle errors are only reported", TIMEOUT, async () => {
    const { hooks, fatal } = recordingHooks();
    const broken = new Error("no database");
    hooks.beforeStartup(() => { throw broken; });
    const refused = new Worker({ url, queues: [unique()], id: unique("node-startup"), hooks });
    await assert.rejects(refused.run(), broken);
    assert.equal(refused.client, null);
    assert.deepEqual(fatal.map(([error, context]) => [error, context.hook, context.worker]), [[broken, "beforeStartup", refused]]);

    const later = recordingHooks();
    const queue = unique();
    later.hooks
      .afterStartup(() => { throw new Error("after startup"); })
      .beforeShutdown(() => { throw new Error("before shutdown"); })
      .afterShutdown(() => { throw new Error("after shutdown"); });
    const id = await operator.enqueue("still.runs", [], { queue });
    const worker = new Worker({ url, queues: [queue], id: unique("node-lifecycle"), hooks: later.hooks,
      handlers: { "still.runs": async () => "ran" } });
    worker.on("completed", () => worker.shutdown());
    await worker.run();
    assert.equal((await operator.job(id)).result, "ran");
    assert.deepEqual(later.fatal.map(([error, context]) => `${context.hook}: ${error.message}`),
      ["afterStartup: after startup", "beforeShutdown: before shutdown", "afterShutdown: after shutdown"]);
  });

  test("the error that ends run() reaches onFatalError, with the worker", TIMEOUT, async () => {
    const { hooks, fatal } = recordingHooks();
    const order = [];
    hooks.beforeShutdown(() => order.push("beforeShutdown")).afterShutdown(() => order.push("afterShutdown"));
    const worker = new Worker({ url, queues: ["not a queue name!"], id: unique("node-fatal"), hooks, handlers: { t: async () => {} } });
    const error = await worker.run().then(() => null, (e) => e);
    assert.equal(error?.code, -32602);
    assert.deepEqual(fatal.map(([e, context]) => [e, context.source, context.worker]), [[error, "worker", worker]]);
    assert.deepEqual(order, ["beforeShutdown", "afterShutdown"]);
  });

  test("stop(): a handed-back job's afterJob says so, and onJobFailure does not fire", TIMEOUT, async () => {
    const queue = unique();
    const id = await operator.enqueue("waits", [], { queue });
    const outcomes = [];
    const failures = [];
    const worker = new Worker({ url, queues: [queue], id: unique("node-hook-stop"),
      hooks: { afterJob: (job, outcome) => outcomes.push([outcome.state, outcome.error?.name]), onJobFailure: (job) => failures.push(job.id) },
      handlers: { waits: (job) => new Promise((_, reject) => job.signal.addEventListener("abort", () => reject(job.signal.reason))) } });
    const run = worker.run();
    await waitFor(async () => (await operator.job(id)).state === "reserved", { what: "the job to be reserved" });
    await worker.stop();
    await run;
    assert.deepEqual(outcomes, [["handedBack", "WorkerStopped"]]);
    assert.deepEqual(failures, []);
  });
});
