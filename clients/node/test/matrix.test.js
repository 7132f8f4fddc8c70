// matrix.js, the cross-language matrix test's Node side, run as the matrix runs it.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { GantryClient } from "../src/index.js";
import { brokerUrl, unique } from "../testing/helpers.js";

const url = brokerUrl();
const matrix = fileURLToPath(new URL("../matrix.js", import.meta.url));
const client = new GantryClient({ url });
after(() => client.close());

const run = (...args) => new Promise((resolve) => {
  execFile(process.execPath, [matrix, ...args], { env: { ...process.env, GANTRY_URL: url }, timeout: 30_000 },
    (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
});

test("matrix.js enqueue COUNT QUEUE prints one id a line; work COUNT QUEUE echoes them all", async () => {
  const queue = unique("matrix");
  const enqueued = await run("enqueue", "4", queue);
  assert.equal(enqueued.code, 0, enqueued.stderr);
  const ids = enqueued.stdout.trim().split("\n");
  assert.equal(ids.length, 4);
  // One job as another language's enqueue would make it.
  ids.push(await client.enqueue("matrix.echo", { from: "python", n: 0 }, { queue }));
  for (const [n, id] of ids.slice(0, 4).entries()) assert.deepEqual((await client.job(id)).args, { from: "node", n });

  const worked = await run("work", "5", queue);
  assert.equal(worked.code, 0, worked.stderr);
  const results = await Promise.all(ids.map(async (id) => (await client.job(id))));
  assert.deepEqual(results.map((job) => job.state), Array(5).fill("completed"));
  assert.deepEqual(results.map((job) => job.result), [
    ...[0, 1, 2, 3].map((n) => ({ by: "node", from: "node", n })),
    { by: "node", from: "python", n: 0 },
  ]);
});

test("matrix.js step QUEUE runs one matrix.step step: it appends \"node\" to the trail", async () => {
  const queue = unique("matrix");
  const { id } = await client.startOperation("matrix.trail", { main: ["matrix.step", "matrix.step"] },
    { globals: { trail: ["python"] }, queue });
  for (const expected of [["python", "node"], ["python", "node", "node"]]) {
    const stepped = await run("step", queue);
    assert.equal(stepped.code, 0, stepped.stderr);
    assert.deepEqual((await client.getOperation(id)).globals.trail, expected);
  }
  const op = await client.getOperation(id);
  assert.equal(op.state, "completed");
  assert.deepEqual(op.steps.map((s) => s.state), ["completed", "completed"]);
});

test("matrix.js refuses bad usage with exit 64", async () => {
  assert.equal((await run("dance", "1", "q")).code, 64);
  assert.equal((await run("enqueue", "many", "q")).code, 64);
  assert.equal((await run("step")).code, 64);
});
