// Replays every proto-json/conformance/*.json transcript through this client's connection layer, matching
// answers as proto-json/conformance.py does and validating them against proto-json/schemas.
import { test } from "node:test";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { brokerUrl } from "../testing/helpers.js";
import { replay } from "../testing/replay.js";
import { Schemas } from "../testing/schemas.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const protoJson = path.resolve(here, "../../../proto-json");
// GANTRY_CONFORMANCE_DIR replays another folder of transcripts instead (for trying out new ones).
const dir = process.env.GANTRY_CONFORMANCE_DIR ?? path.join(protoJson, "conformance");
const url = brokerUrl();
const schemas = new Schemas(path.join(protoJson, "schemas"));
const transcripts = readdirSync(dir).filter((name) => name.endsWith(".json")).sort();

test("there are conformance transcripts to replay", { skip: transcripts.length ? false : `none in ${dir} yet` }, () => {});

for (const name of transcripts) {
  test(`conformance ${name}`, { timeout: 30_000 }, async () => {
    await replay(path.join(dir, name), url, { schemas });
  });
}
