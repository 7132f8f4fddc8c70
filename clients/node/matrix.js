#!/usr/bin/env node
// The cross-language matrix test's Node side (broker address from GANTRY_URL):
//   node matrix.js enqueue COUNT QUEUE   enqueues COUNT matrix.echo jobs {"from":"node","n":i}, prints each id
//   node matrix.js work COUNT QUEUE      works QUEUE until COUNT matrix.echo jobs completed (exit 1 after 60 s)
//   node matrix.js step QUEUE            runs one matrix.step step of an operation: appends "node" to the
//                                        global trail (exit 1 after 60 s without)
import { GantryClient, StepResult, Worker } from "./src/index.js";

const argv = process.argv.slice(2);
const [mode] = argv;
// `step QUEUE` runs exactly one step; the others take COUNT QUEUE.
const [countText, queue] = mode === "step" ? ["1", argv[1]] : argv.slice(1);
const count = Number(countText);
if (!["enqueue", "work", "step"].includes(mode) || !Number.isInteger(count) || count < 0 || !queue) {
  console.error("usage: node matrix.js enqueue|work COUNT QUEUE\n       node matrix.js step QUEUE   (broker address from GANTRY_URL)");
  process.exit(64);
}
const url = process.env.GANTRY_URL ?? "127.0.0.1:7440";

try {
  if (mode === "step") {
    const timer = setTimeout(() => {
      console.error("matrix: no matrix.step step completed within 60 s");
      process.exit(1);
    }, 60_000);
    // Concurrency 1: it holds one step at a time and stops once that one is acked, taking no other.
    const worker = new Worker({
      url, queues: [queue], concurrency: 1, id: `node-matrix-step:${process.pid}`,
      handlers: {
        "matrix.step": async (job) => {
          const trail = job.operation.globals.trail || [];
          return new StepResult({ set: { trail: [...trail, "node"] } });
        },
      },
    });
    let done = false;
    worker.on("completed", () => { done = true; worker.shutdown(); });
    worker.on("failed", (job, error) => console.error(`matrix: step ${job.id} failed: ${error.message}`));
    worker.on("warning", (error) => console.error("matrix:", error.message));
    await worker.run();
    clearTimeout(timer);
    if (!done) console.error("matrix: the worker stopped before a step completed");
    process.exit(done ? 0 : 1);
  } else if (mode === "enqueue") {
    const client = new GantryClient({ url, name: "gantry-node-matrix" });
    for (let n = 0; n < count; n++) {
      console.log(await client.enqueue("matrix.echo", { from: "node", n }, { queue }));
    }
    client.close();
    process.exit(0);
  } else {
    let done = 0;
    const timer = setTimeout(() => {
      console.error(`matrix: only ${done} of ${count} jobs completed within 60 s`);
      process.exit(1);
    }, 60_000);
    const worker = new Worker({
      url, queues: [queue], concurrency: 8, id: `node-matrix:${process.pid}`,
      handlers: { "matrix.echo": async ({ args }) => ({ by: "node", from: args.from, n: args.n }) },
    });
    worker.on("completed", () => { if (++done >= count) worker.shutdown(); });
    worker.on("warning", (error) => console.error("matrix:", error.message));
    if (count > 0) await worker.run();
    clearTimeout(timer);
    process.exit(0);
  }
} catch (error) {
  console.error(`matrix: ${error.message}`);
  process.exit(1);
}
