// A small JSON Schema (draft 2020-12) validator for the keywords proto-json/schemas uses, so the conformance
// replay checks every response against the schemas as proto-json/conformance.py does (standard library only).
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

const BASE = "https://gantry.dev/proto/v1/";

function loadAll(dir, into = new Map()) {
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) loadAll(file, into);
    else if (name.endsWith(".json")) {
      const schema = JSON.parse(readFileSync(file, "utf8"));
      into.set(schema.$id, schema);
    }
  }
  return into;
}

const typeOf = (v) => v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b) ||
  (typeOf(a) === "object" && typeOf(b) === "object" && Object.keys(a).length === Object.keys(b).length &&
    Object.keys(a).every((k) => k in b && equal(a[k], b[k])));

export class Schemas {
  constructor(dir) {
    this.byId = loadAll(dir);
  }

  /** Problems (strings) found validating `value` against the schema at `relative` (e.g. `methods/ack.result.json`). */
  validate(relative, value) {
    const problems = [];
    const id = BASE + relative;
    if (!this.byId.has(id)) throw new Error(`no schema ${relative}`);
    this.#check(this.byId.get(id), value, id, "$", problems);
    return problems;
  }

  #resolve(ref, base) {
    const url = new URL(ref, base);
    const doc = url.href.split("#")[0];
    let schema = this.byId.get(doc);
    if (!schema) throw new Error(`cannot resolve $ref ${ref} from ${base}`);
    for (const part of decodeURIComponent(url.hash.slice(1)).split("/").filter(Boolean)) schema = schema[part];
    if (schema === undefined) throw new Error(`cannot resolve $ref ${ref} from ${base}`);
    return [schema, doc];
  }

  #check(schema, value, base, where, problems) {
    if (schema === true) return;
    if (schema === false) return void problems.push(`${where}: not allowed`);
    if (schema.$id) base = new URL(schema.$id, base).href;
    const fail = (message) => problems.push(`${where}: ${message} (got ${JSON.stringify(value)?.slice(0, 120)})`);
    const passes = (sub) => { const found = []; this.#check(sub, value, base, where, found); return found.length === 0; };
    const type = typeOf(value);

    if (schema.$ref) {
      const [target, doc] = this.#resolve(schema.$ref, base);
      this.#check(target, value, doc, where, problems);
    }
    if (schema.type) {
      const types = [].concat(schema.type);
      const ok = types.some((t) => t === type || (t === "integer" && Number.isInteger(value)) || (t === "number" && type === "number"));
      if (!ok) return void fail(`should be ${types.join(" or ")}`);
    }
    if ("const" in schema && !equal(schema.const, value)) fail(`should be ${JSON.stringify(schema.const)}`);
    if (schema.enum && !schema.enum.some((e) => equal(e, value))) fail(`should be one of ${JSON.stringify(schema.enum)}`);
    if (type === "number") {
      if (schema.minimum !== undefined && value < schema.minimum) fail(`should be ≥ ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) fail(`should be ≤ ${schema.maximum}`);
    }
    if (type === "string") {
      const length = [...value].length;
      if (schema.minLength !== undefined && length < schema.minLength) fail(`should have ≥ ${schema.minLength} characters`);
      if (schema.maxLength !== undefined && length > schema.maxLength) fail(`should have ≤ ${schema.maxLength} characters`);
      if (schema.pattern && !new RegExp(schema.pattern, "u").test(value)) fail(`should match ${schema.pattern}`);
    }
    if (type === "array") {
      if (schema.minItems !== undefined && value.length < schema.minItems) fail(`should have ≥ ${schema.minItems} items`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) fail(`should have ≤ ${schema.maxItems} items`);
      if (schema.items !== undefined) value.forEach((item, i) => this.#check(schema.items, item, base, `${where}[${i}]`, problems));
    }
    if (type === "object") {
      for (const key of schema.required ?? []) if (!(key in value)) fail(`lacks required ${key}`);
      const properties = schema.properties ?? {};
      for (const [key, item] of Object.entries(value)) {
        if (key in properties) this.#check(properties[key], item, base, `${where}.${key}`, problems);
        else if (schema.additionalProperties !== undefined) this.#check(schema.additionalProperties, item, base, `${where}.${key}`, problems);
        if (schema.propertyNames) this.#check(schema.propertyNames, key, base, `${where} key ${key}`, problems);
      }
    }
    if (schema.allOf) for (const sub of schema.allOf) this.#check(sub, value, base, where, problems);
    if (schema.anyOf && !schema.anyOf.some(passes)) fail("matches none of anyOf");
    if (schema.oneOf && schema.oneOf.filter(passes).length !== 1) fail("should match exactly one of oneOf");
    if (schema.not && passes(schema.not)) fail("should not match the not schema");
    if (schema.if !== undefined) {
      const branch = passes(schema.if) ? schema.then : schema.else;
      if (branch !== undefined) this.#check(branch, value, base, where, problems);
    }
  }
}
