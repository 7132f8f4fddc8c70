#!/usr/bin/env python3
"""Checks the Gantry v1 protocol spec in this folder.

1. Every file under schemas/ is a valid JSON Schema draft 2020-12 with `$schema` and an `$id` matching its
   path, and every `$ref` resolves.
2. errors.json is well formed and agrees with the README's error table (and with
   ../Sources/GantryProtocol/ErrorCode.swift when that file is there).
3. Every transcript in README.md (fenced blocks of `C:`/`S:` lines, one connection per block) is consistent
   with the schemas:
   - each client line is a valid request (envelope.request.json) with valid params, unless the broker's
     answer says it is not: then the schema must refuse it too (-32700 not JSON, -32600 envelope,
     -32602 params, -32601 unknown method), except for the few values only the broker can judge
     (BROKER_CHECKED: a cron expression's field ranges, its time zone database, args against a job type's schema);
   - each server line is a valid response (envelope.response.json) answering a request of the block by id
     (or id null for lines that had none); results validate against <method>.result.json, error codes are
     in errors.json and -32602 errors name data.field;
   - a server line that is an object with "method" and no "id" is a notification from the broker instead: it
     must validate against envelope.notification.json (worker.quiet, worker.stop) and answers nothing;
   - every request with an id is answered (unless the block ends with -32006, which closes the connection);
   - every method has a params and result schema and at least one successful example.

Usage: python3 proto-json/check_schemas.py    (needs the `jsonschema` package)
"""
import json
import pathlib
import re
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012
except ImportError as error:  # pragma: no cover
    sys.exit(f"check_schemas.py needs the jsonschema package (pip install jsonschema): {error}")

HERE = pathlib.Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
BASE = "https://gantry.dev/proto/v1/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
METHODS = ["hello", "enqueue", "enqueue_batch", "reserve", "ack", "nack", "extend", "jobs.get", "jobs.list", "jobs.retry", "jobs.cancel", "jobs.discard", "cleanup", "stats", "queues.pause", "queues.resume", "queues.list", "queues.configure", "workers.list", "workers.quiet", "workers.stop",
           "cron.list", "cron.upsert", "cron.delete", "cron.pause", "cron.resume", "cron.trigger",
           "types.register", "types.list", "types.get", "types.delete",
           "operations.start", "operations.get", "operations.list", "operations.retry", "operations.cancel",
           "events.publish", "events.get", "events.list", "events.replay",
           "subscriptions.upsert", "subscriptions.list", "subscriptions.delete", "subscriptions.pause", "subscriptions.resume",
           "packages.upsert", "packages.list", "packages.get", "packages.delete", "packages.run", "packages.executions",
           "executions.save", "executions.saved",
           "watch", "unwatch", "webhooks.upsert", "webhooks.list", "webhooks.delete", "webhooks.deliveries"]

# -32602 refusals that no schema can foresee: values only the broker can judge. A transcript may show the broker
# refusing params the schema accepts when data.field is one of these.
# A field ending in "." covers every path under it: args checked against the job type's registered args_schema
# (only the broker knows it), and a schema's own keywords beyond what a JSON Schema of schemas can say.
BROKER_CHECKED = {"cron.upsert": {"cron", "timezone", "args."}, "enqueue": {"args."}, "enqueue_batch": {"jobs["},
                  "types.register": {"args_schema."}, "hello": {"worker.handlers["},
                  # Whether a job is a step, and the branches of its operation, only the broker knows.
                  "ack": {"set", "jump_to"},
                  # Which packages exist and which keys their configs have, only the broker knows.
                  "packages.upsert": {"triggers.cron", "triggers.timezone"}, "packages.run": {"config."},
                  "subscriptions.upsert": {"target.package", "target.config."}}


def broker_checked(method, field):
    return isinstance(field, str) and any(
        field == known or (known[-1] in ".[" and field.startswith(known)) for known in BROKER_CHECKED.get(method, ()))

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def first_error(validator, instance):
    try:
        errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.path), list(map(str, e.path))))
    except Exception as error:  # an unresolvable $ref, already reported by check_refs
        return f"(the schema could not be applied: {error})"
    if not errors:
        return None
    e = errors[0]
    path = "/".join(map(str, e.absolute_path)) or "(top)"
    return f"at {path}: {e.message[:300]}"


# ---------------------------------------------------------------- 1. schemas

def load_schemas():
    schemas = {}
    for path in sorted(SCHEMAS.rglob("*.json")):
        rel = path.relative_to(SCHEMAS).as_posix()
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            problem(f"schemas/{rel}", f"not JSON: {error}")
            continue
        if schema.get("$schema") != DRAFT:
            problem(f"schemas/{rel}", f"$schema must be {DRAFT}")
        if schema.get("$id") != BASE + rel:
            problem(f"schemas/{rel}", f"$id must be {BASE + rel}, is {schema.get('$id')!r}")
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            problem(f"schemas/{rel}", f"invalid 2020-12 schema: {error.message}")
            continue
        schemas[rel] = schema
    return schemas


def walk_refs(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            else:
                walk_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            walk_refs(value, found)


def check_refs(schemas, registry):
    for rel, schema in schemas.items():
        refs = []
        walk_refs(schema, refs)
        resolver = registry.resolver(base_uri=schema["$id"])
        for ref in refs:
            try:
                resolver.lookup(ref)
            except Exception as error:  # referencing raises several kinds
                problem(f"schemas/{rel}", f"$ref {ref!r} does not resolve: {error}")
            target = ref.split("#", 1)[0]
            if target and not (SCHEMAS / rel).parent.joinpath(target).resolve().is_file():
                problem(f"schemas/{rel}", f"$ref {ref!r} names no file next to it")


# ---------------------------------------------------------------- 2. errors

def check_errors(readme):
    try:
        errors = json.loads((HERE / "errors.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        problem("errors.json", f"unreadable: {error}")
        return {}
    table = {}
    for index, entry in enumerate(errors if isinstance(errors, list) else []):
        where = f"errors.json[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"code", "name", "meaning", "retryable"}:
            problem(where, "must be an object with exactly code, name, meaning, retryable")
            continue
        if not isinstance(entry["code"], int) or not isinstance(entry["name"], str) \
                or not isinstance(entry["meaning"], str) or not isinstance(entry["retryable"], bool):
            problem(where, "code must be an integer, name and meaning strings, retryable a boolean")
            continue
        if entry["code"] in table:
            problem(where, f"code {entry['code']} listed twice")
        table[entry["code"]] = entry
    if not isinstance(errors, list) or not table:
        problem("errors.json", "must be a non-empty array")

    rows = re.findall(r"^\| (-32\d{3}) \| (\w+) \| (yes|no) \|", readme, re.M)
    readme_table = {int(code): (name, flag == "yes") for code, name, flag in rows}
    json_table = {code: (e["name"], e["retryable"]) for code, e in table.items()}
    if readme_table != json_table:
        problem("README.md errors table", f"differs from errors.json: README {sorted(readme_table.items())} "
                                          f"vs errors.json {sorted(json_table.items())}")

    swift = HERE.parent / "Sources" / "GantryProtocol" / "ErrorCode.swift"
    if swift.is_file():
        text = swift.read_text(encoding="utf-8")
        cases = dict(re.findall(r"case (\w+) = (-\d+)", text))
        names = dict(re.findall(r"case \.(\w+): \"(\w+)\"", text))
        retry_line = re.search(r"case ([^:]+): true", text.split("isRetryable", 1)[-1])
        retryable = {c.strip().lstrip(".") for c in retry_line.group(1).split(",")} if retry_line else set()
        swift_table = {int(code): (names.get(case), case in retryable) for case, code in cases.items()}
        if swift_table != json_table:
            problem("errors.json", f"differs from ErrorCode.swift: {sorted(swift_table.items())}")
    return table


# ---------------------------------------------------------------- 3. transcripts

def transcript_blocks(readme):
    """Yields (line number of the fence, [(line number, 'C'|'S'|'#', text)]) for each transcript block."""
    lines = readme.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start = i
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append((i + 1, lines[i]))
                i += 1
            entries = [(n, l) for n, l in body if l.strip()]
            if entries and re.match(r"^[CS]:( |$)", entries[0][1]):
                parsed = []
                for n, l in entries:
                    m = re.match(r"^([CS]):(?: (.*))?$", l)
                    if m:
                        parsed.append((n, m.group(1), m.group(2) or ""))
                    elif l.startswith("#"):
                        parsed.append((n, "#", l))
                    else:
                        problem(f"README.md:{n}", "a transcript line must start with 'C: ', 'S: ' or '#'")
                yield start + 1, parsed
        i += 1


def id_key(value):
    return json.dumps(value)


class Checker:
    def __init__(self, schemas, registry, errors):
        self.errors = errors
        self.validators = {rel: Draft202012Validator(s, registry=registry) for rel, s in schemas.items()}
        self.request = self.validators.get("envelope.request.json")
        self.request_item = Draft202012Validator({"$ref": BASE + "envelope.request.json#/$defs/request"}, registry=registry)
        self.response = self.validators.get("envelope.response.json")
        self.notification = self.validators.get("envelope.notification.json")
        self.successes = {m: 0 for m in METHODS}
        self.counts = {"client lines": 0, "server lines": 0, "results validated": 0, "refusals confirmed": 0,
                       "broker-checked refusals": 0, "notifications": 0}

    def params_validator(self, method):
        return self.validators.get(f"methods/{method}.params.json")

    def result_validator(self, method):
        return self.validators.get(f"methods/{method}.result.json")

    def block(self, fence_line, entries):
        pending = {}        # id -> (line, method or None, envelope problem, params problem)
        null_expected = []  # (line, code) answers with id null that client lines call for
        closed = False
        for n, kind, text in entries:
            where = f"README.md:{n}"
            if kind == "#":
                continue
            if kind == "C":
                self.counts["client lines"] += 1
                if not text.strip():
                    continue  # a blank line: ignored by the broker
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    null_expected.append((n, -32700))
                    continue
                if isinstance(value, list):
                    if not value:
                        null_expected.append((n, -32600))
                    for item in value:
                        self.client_request(where, n, item, pending, null_expected)
                else:
                    self.client_request(where, n, value, pending, null_expected)
                continue
            # a server line
            self.counts["server lines"] += 1
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                problem(where, f"server line is not JSON: {error}")
                continue
            if isinstance(value, dict) and "method" in value and "id" not in value:
                # a notification the broker sends on its own (worker.quiet, worker.stop): it answers nothing
                failure = first_error(self.notification, value) if self.notification is not None else None
                if failure:
                    problem(where, f"not a valid broker notification (envelope.notification.json) {failure}")
                else:
                    self.counts["notifications"] += 1
                continue
            if self.response is not None:
                failure = first_error(self.response, value)
                if failure:
                    problem(where, f"not a valid response (envelope.response.json) {failure}")
                    continue
            for answer in value if isinstance(value, list) else [value]:
                if answer.get("error", {}).get("code") == -32006:
                    closed = True
                self.server_answer(where, answer, pending, null_expected)
        for key, (n, *_rest) in pending.items():
            if not closed:
                problem(f"README.md:{n}", f"request id {key} gets no answer in its transcript")
        for n, code in null_expected:
            problem(f"README.md:{n}", f"this line should be answered with error {code} and id null, but is not")

    def client_request(self, where, n, item, pending, null_expected):
        envelope_problem = first_error(self.request_item, item)
        has_id = isinstance(item, dict) and "id" in item and isinstance(item["id"], (str, int)) \
            and not isinstance(item["id"], bool)
        method = item.get("method") if isinstance(item, dict) else None
        params_problem = None
        if envelope_problem is None and method in METHODS:
            validator = self.params_validator(method)
            if validator is None:
                problem(where, f"no schema methods/{method}.params.json")
            else:
                params_problem = first_error(validator, item.get("params", {}))
        if not has_id:
            if envelope_problem is not None:
                null_expected.append((n, -32600))
            elif params_problem is not None:
                problem(where, f"notification with invalid {method} params (it would fail silently): {params_problem}")
            return
        key = id_key(item["id"])
        if key in pending:
            problem(where, f"id {key} is already waiting for an answer in this transcript")
        pending[key] = (n, method, envelope_problem, params_problem)

    def server_answer(self, where, answer, pending, null_expected):
        error = answer.get("error")
        if error is not None:
            code = error.get("code")
            if code not in self.errors:
                problem(where, f"error code {code} is not in errors.json")
            if code == -32602 and not (isinstance(error.get("data"), dict) and isinstance(error["data"].get("field"), str)):
                problem(where, "a -32602 error must name data.field")
        if answer.get("id") is None:
            if error is None:
                problem(where, "a result with id null")
                return
            if error.get("code") == -32006:
                return
            for index, (_n, code) in enumerate(null_expected):
                if code == error.get("code"):
                    del null_expected[index]
                    return
            problem(where, f"error {error.get('code')} with id null answers no client line of this transcript")
            return
        key = id_key(answer["id"])
        if key not in pending:
            problem(where, f"answers id {key}, which no pending request of this transcript has")
            return
        _n, method, envelope_problem, params_problem = pending.pop(key)
        if error is None:
            if envelope_problem:
                problem(where, f"the broker answers a request that envelope.request.json refuses {envelope_problem}")
                return
            if method not in METHODS:
                problem(where, f"a result for unknown method {method!r}")
                return
            if params_problem:
                problem(where, f"the broker accepts {method} params that the schema refuses {params_problem}")
                return
            validator = self.result_validator(method)
            if validator is None:
                problem(where, f"no schema methods/{method}.result.json")
                return
            failure = first_error(validator, answer["result"])
            if failure:
                problem(where, f"{method} result does not match methods/{method}.result.json {failure}")
                return
            self.counts["results validated"] += 1
            self.successes[method] += 1
            return
        code = error.get("code")
        if code == -32600:
            if envelope_problem is None:
                problem(where, "-32600 for a request that envelope.request.json accepts")
            else:
                self.counts["refusals confirmed"] += 1
        elif code == -32601:
            if method in METHODS:
                problem(where, f"-32601 for known method {method!r}")
        elif code == -32602:
            if method not in METHODS:
                problem(where, f"-32602 for unknown method {method!r}")
            elif params_problem is None:
                field = error.get("data", {}).get("field") if isinstance(error.get("data"), dict) else None
                if broker_checked(method, field):
                    self.counts["broker-checked refusals"] += 1
                else:
                    problem(where, f"-32602 for {method} params that methods/{method}.params.json accepts")
            else:
                self.counts["refusals confirmed"] += 1
        else:
            if envelope_problem or params_problem:
                problem(where, f"error {code} for a request the schemas refuse: {envelope_problem or params_problem}")


def report():
    print(f"check_schemas.py: {len(problems)} problem(s):", file=sys.stderr)
    for text in problems:
        print(f"  - {text}", file=sys.stderr)
    return 1


def main():
    readme_path = HERE / "README.md"
    readme = readme_path.read_text(encoding="utf-8")

    schemas = load_schemas()
    registry = Registry().with_resources(
        (s["$id"], Resource(contents=s, specification=DRAFT202012)) for s in schemas.values() if "$id" in s)
    check_refs(schemas, registry)
    for name in ["common.json", "job.json", "reserved-job.json", "job-error.json", "worker.json",
                 "cron-schedule.json", "rate-limit.json",
                 "envelope.request.json", "envelope.response.json", "envelope.notification.json"]:
        if name not in schemas:
            problem("schemas", f"{name} is missing")
    for method in METHODS:
        for part in ("params", "result"):
            if f"methods/{method}.{part}.json" not in schemas:
                problem("schemas/methods", f"{method}.{part}.json is missing")
            elif part == "params":
                root = schemas[f"methods/{method}.params.json"]
                if root.get("additionalProperties") is not False:
                    problem(f"schemas/methods/{method}.params.json", "must set additionalProperties: false")

    errors = check_errors(readme)
    if problems:  # broken schemas would only make the transcript checks noisy
        return report()

    checker = Checker(schemas, registry, errors)
    blocks = 0
    for fence_line, entries in transcript_blocks(readme):
        blocks += 1
        checker.block(fence_line, entries)
    for method, count in checker.successes.items():
        if count == 0:
            problem("README.md", f"no transcript shows a successful {method}")
        if f"### {method}\n" not in readme:
            problem("README.md", f"no section '### {method}'")

    if problems:
        return report()
    c = checker.counts
    print(f"ok: {len(schemas)} schemas valid (draft 2020-12, refs resolve); errors.json matches the README"
          f"{' and ErrorCode.swift' if (HERE.parent / 'Sources/GantryProtocol/ErrorCode.swift').is_file() else ''}; "
          f"{blocks} transcripts: {c['client lines']} client lines, {c['server lines']} server lines, "
          f"{c['results validated']} results validated, {c['refusals confirmed']} refusals confirmed by the schemas "
          f"(and {c['broker-checked refusals']} of values only the broker checks), "
          f"{c['notifications']} broker notifications validated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
