// Packages against a real broker (GANTRY_URL): the client's packages.* and executions.* methods, the `package`
// a step's job carries, and a Worker's handler reading its config. Packages (like subscriptions) are global to
// the broker, so every test names its packages, step types and queues uniquely and deletes its packages at the end.
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { GantryClient, Worker, RPCError } from "../src/index.js";
import { brokerUrl, unique, waitFor } from "../testing/helpers.js";

const url = brokerUrl();
const client = new GantryClient({ url, name: "node-packages-test" });
after(() => client.close());

/** A job-type-like name no other test or run uses: `prefix.<hex>`. */
const typeName = (prefix) => `${prefix}.${unique("pkg").replace(/-/g, "_")}`;

/** Names packages, remembering them so that `cleanup()` deletes them (and their subscriptions, which block that). */
function packages() {
  const names = [];
  const subscriptions = [];
  return {
    name: (prefix) => { const name = typeName(prefix); names.push(name); return name; },
    subscription: (what) => { const name = unique(`node-pkg-sub-${what}`); subscriptions.push(name); return name; },
    cleanup: async () => {
      for (const name of subscriptions) await client.deleteSubscription(name).catch(() => {});
      for (const name of names) await client.deletePackage(name).catch(() => {});
      const left = new Set((await client.listPackages()).map((p) => p.name));
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

describe("packages", { concurrency: true }, () => {
  test("upsert, run with a config override, each step's job carrying the package; executions, save, saved, delete", async () => {
    const pkgs = packages();
    try {
      const queue = unique();
      const name = pkgs.name("report");
      const fetch = typeName("report.fetch");
      const mail = typeName("report.mail");

      const created = await client.upsertPackage(name, [fetch, mail],
        { description: "the sales report", config: { region: "eu" }, queue });
      assert.equal(created.created, true);
      const pkg = created.package;
      assert.equal(pkg.name, name);
      assert.equal(pkg.description, "the sales report");
      assert.deepEqual(pkg.config, { region: "eu" });
      assert.equal(pkg.queue, queue);
      assert.equal(pkg.active, true);
      assert.equal(pkg.source, "rpc");
      assert.equal(pkg.triggers.manual, true);
      assert.equal(pkg.triggers.timezone, "UTC");
      assert.deepEqual(pkg.steps.map((s) => [s.type, s.queue, s.priority, s.max_attempts]),
        [[fetch, queue, 16383, 25], [mail, queue, 16383, 25]]);
      assert.deepEqual(await client.getPackage(name), pkg);
      assert.deepEqual((await client.listPackages()).find((p) => p.name === name), pkg);
      // Upserting again replaces it: created false.
      const again = await client.upsertPackage(name, [fetch, mail], { description: "the sales report", config: { region: "eu" }, queue });
      assert.equal(again.created, false);

      const run = await client.runPackage(name, { config: { region: "us" } });
      assert.equal(typeof run.id, "string");
      assert.deepEqual(run, { id: run.id, package: name, state: "running" });

      // The first step: its job carries the operation (the execution) and the package with this run's config.
      const first = await reserveOne(queue);
      assert.equal(first.type, fetch);
      assert.deepEqual(first.package, { name, config: { region: "us" } });
      assert.equal(first.package.config.region, "us");
      assert.deepEqual(first.operation, { id: run.id, name, branch: "main", step: fetch, index: 0, globals: {} });
      assert.deepEqual(await client.ack(first.id, { rows: 1200 }), { ok: true });

      const second = await reserveOne(queue);
      assert.equal(second.type, mail);
      assert.deepEqual(second.package, { name, config: { region: "us" } });
      assert.equal(second.operation.id, run.id);
      assert.equal(second.operation.index, 1);
      await client.ack(second.id);

      const execution = await waitFor(async () => {
        const { executions } = await client.listExecutions(name);
        return executions[0]?.state === "completed" && executions[0];
      }, { what: `execution ${run.id} to complete` });
      assert.equal(execution.id, run.id);
      assert.equal(execution.package, name);
      assert.equal(execution.trigger, "manual");
      assert.deepEqual(execution.config, { region: "us" });
      assert.ok(execution.finished_at);
      assert.deepEqual(execution.steps.map((s) => [s.index, s.type, s.state, s.job_id]),
        [[0, fetch, "completed", first.id], [1, mail, "completed", second.id]]);
      assert.deepEqual(execution.steps[0].result, { rows: 1200 });
      assert.equal(execution.steps[0].attempts, 1);
      // Paging: limit and next_cursor, as for the other lists.
      const page = await client.listExecutions(name, { limit: 1 });
      assert.deepEqual(page.executions.map((e) => e.id), [run.id]);

      const saved = await client.saveExecution(run.id, "baseline", { description: "before the price change" });
      assert.equal(saved.id, run.id);
      assert.equal(saved.saved.name, "baseline");
      assert.equal(saved.saved.description, "before the price change");
      assert.ok(!Number.isNaN(Date.parse(saved.saved.saved_at)), saved.saved.saved_at);
      const listed = await client.listSavedExecutions({ package: name });
      assert.deepEqual(listed.map((e) => [e.id, e.saved.name]), [[run.id, "baseline"]]);
      assert.deepEqual(listed[0].steps[0].result, { rows: 1200 }, "a saved execution keeps its steps' results");
      assert.ok((await client.listSavedExecutions()).some((e) => e.id === run.id), "without a package: every saved one");

      // A config key the package lacks is refused rather than run with the default.
      const typo = await client.runPackage(name, { config: { regoin: "us" } }).catch((e) => e);
      assert.ok(typo instanceof RPCError, String(typo));
      assert.equal(typo.code, -32602);
      assert.equal(typo.name, "invalid_params");
      assert.equal(typo.field, "config.regoin");

      assert.deepEqual(await client.deletePackage(name), { deleted: true });
      await assert.rejects(client.getPackage(name), { code: -32002, name: "not_found" });
      assert.equal((await client.listPackages()).find((p) => p.name === name), undefined);
    } finally {
      await pkgs.cleanup();
    }
  });

  test("a Worker's handlers read job.package.config; an event runs the package with its own config", async () => {
    const pkgs = packages();
    try {
      const queue = unique();
      const name = pkgs.name("sync");
      const pull = typeName("sync.pull");
      const push = typeName("sync.push");
      const event = `${typeName("sync")}.requested`;
      await client.upsertPackage(name, [pull, push], { config: { region: "eu", batch: 10 }, queue, triggers: { events: [event] } });

      const byHand = await client.runPackage(name, { config: { batch: 50 } });
      const published = await client.publish(event, { by: "ops" });
      assert.deepEqual(published.triggered.map((t) => [t.package, t.subscription]), [[name, undefined]]);
      const byEvent = published.triggered[0].operation_id;
      assert.equal(typeof byEvent, "string");

      const seen = [];
      const worker = new Worker({
        url, queues: [queue], concurrency: 2, id: unique("node-pkg-worker"),
        handlers: {
          [pull]: async (job) => {
            const { region, batch } = job.package.config;
            seen.push([job.operation.id, job.type, region, batch]);
            return { pulled: batch, from: region };
          },
          [push]: async (job) => {
            seen.push([job.operation.id, job.type, job.package.config.region, job.package.config.batch]);
            return { pushed: job.package.name };
          },
        },
      });
      const warnings = [];
      worker.on("warning", (error) => warnings.push(error));
      const running = worker.run();
      let executions;
      try {
        executions = await waitFor(async () => {
          const { executions } = await client.listExecutions(name);
          return executions.length === 2 && executions.every((e) => e.state === "completed") && executions;
        }, { timeoutMs: 15_000, what: "both executions to complete" });
      } finally {
        await worker.shutdown();
        await running;
      }
      assert.deepEqual(warnings.map((error) => error.message), []);

      const ran = (id) => seen.filter(([op]) => op === id).map(([, ...rest]) => rest);
      assert.deepEqual(ran(byHand.id), [[pull, "eu", 50], [push, "eu", 50]]);
      assert.deepEqual(ran(byEvent), [[pull, "eu", 10], [push, "eu", 10]]);
      const byId = Object.fromEntries(executions.map((e) => [e.id, e]));
      assert.equal(byId[byHand.id].trigger, "manual");
      assert.equal(byId[byEvent].trigger, "event");
      assert.deepEqual(byId[byEvent].globals.event.payload, { by: "ops" });
      assert.deepEqual(byId[byHand.id].steps.map((s) => s.result), [{ pulled: 50, from: "eu" }, { pushed: name }]);
    } finally {
      await pkgs.cleanup();
    }
  });

  test("a subscription targeting a package; refusals: code, name and field", async () => {
    const pkgs = packages();
    try {
      const queue = unique();
      const name = pkgs.name("notify");
      const step = typeName("notify.send");
      await client.upsertPackage(name, [step], { config: { channel: "mail" }, queue });

      const sub = pkgs.subscription("notify");
      const event = `${typeName("notify")}.due`;
      const upserted = await client.upsertSubscription(sub, event, { package: name, config: { channel: "sms" } });
      assert.equal(upserted.subscription.target.package, name);
      const published = await client.publish(event, {});
      assert.deepEqual(published.triggered.map((t) => t.subscription), [sub]);
      const job = await reserveOne(queue);
      assert.deepEqual(job.package, { name, config: { channel: "sms" } });
      assert.equal(job.operation.id, published.triggered[0].operation_id);
      await client.ack(job.id);

      // Deleting a package a subscription targets is refused, naming the subscription.
      const blocked = await client.deletePackage(name).catch((e) => e);
      assert.ok(blocked instanceof RPCError, String(blocked));
      assert.equal(blocked.code, -32008);
      assert.equal(blocked.name, "wrong_state");
      assert.deepEqual(blocked.data.subscriptions, [sub]);
      await assert.rejects(client.upsertSubscription(pkgs.subscription("typo"), event, { package: name, config: { chanel: "sms" } }),
        { code: -32602, field: "target.config.chanel" });
      await client.deleteSubscription(sub);

      await assert.rejects(client.upsertPackage(pkgs.name("bad"), [step], { config: "fast" }), { code: -32602, field: "config" });
      await assert.rejects(client.upsertPackage(pkgs.name("bad"), []), { code: -32602, field: "steps" });
      await assert.rejects(client.upsertPackage(pkgs.name("bad"), [step], { triggers: { cron: "every day" } }),
        { code: -32602, field: "triggers.cron" });
      await assert.rejects(client.listExecutions(name, { limit: 0 }), { code: -32602, field: "limit" });

      // Inactive, or not manual: run by hand is refused.
      await client.upsertPackage(name, [step], { config: { channel: "mail" }, queue, active: false });
      await assert.rejects(client.runPackage(name), { code: -32008, name: "wrong_state" });
      await client.upsertPackage(name, [step], { config: { channel: "mail" }, queue, triggers: { manual: false } });
      await assert.rejects(client.runPackage(name), { code: -32008, name: "wrong_state" });

      const missing = typeName("never");
      await assert.rejects(client.getPackage(missing), { code: -32002, name: "not_found" });
      await assert.rejects(client.runPackage(missing), { code: -32002, name: "not_found" });
      await assert.rejects(client.deletePackage(missing), { code: -32002, name: "not_found" });
      await assert.rejects(client.saveExecution("999999999", "keep"), { code: -32002, name: "not_found" });
      assert.deepEqual(await client.listSavedExecutions({ package: missing }), []);
    } finally {
      await pkgs.cleanup();
    }
  });
});
