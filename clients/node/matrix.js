#!/usr/bin/env node
// The cross-language matrix test's Node side (broker address from GANTRY_URL):
//   node matrix.js enqueue COUNT QUEUE   enqueues COUNT matrix.echo jobs {"from":"node","n":i}, prints each id
//   node matrix.js work COUNT QUEUE      works QUEUE until COUNT matrix.echo jobs completed (exit 1 after 60 s)
import { GantryClient, Worker } from "./src/index.js";

const [mode, countText, queue] = process.argv.slice(2);
const count = Number(countText);
if (!["enqueue", "work"].includes(mode) || !Number.isInteger(count) || count < 0 || !queue) {
  console.error("usage: node matrix.js enqueue|work COUNT QUEUE   (broker address from GANTRY_URL)");
  process.exit(64);
}
const url = process.env.GANTRY_URL ?? "127.0.0.1:7440";

try {
  if (mode === "enqueue") {
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
