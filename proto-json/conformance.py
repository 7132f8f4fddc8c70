#!/usr/bin/env python3
"""Replays the conformance transcripts in proto-json/conformance/ against a live broker (format:
proto-json/conformance/README.md), and validates every response against the JSON Schemas in proto-json/schemas/.

Usage: python3 proto-json/conformance.py [--broker HOST:PORT] [TRANSCRIPT.json ...]
       (default broker: $GANTRY_URL, else 127.0.0.1:7440; default transcripts: all of them)
Exit status 0 when every transcript passes. Needs the `jsonschema` package for the schema checks.
"""
import argparse
import json
import os
import pathlib
import secrets
import socket
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
TRANSCRIPTS = HERE / "conformance"
SCHEMAS = HERE / "schemas"
BASE = "https://gantry.dev/proto/v1/"


class Mismatch(Exception):
    pass


def load_validators():
    try:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
    except ImportError:
        print("conformance: jsonschema not installed; checking values only", file=sys.stderr)
        return None
    resources = []
    for path in SCHEMAS.rglob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry = Registry().with_resources(resources)

    def validator(relative):
        return Draft202012Validator({"$ref": BASE + relative}, registry=registry)

    return validator


def substitute(value, variables):
    if isinstance(value, str):
        for name, saved in variables.items():
            if value == "${" + name + "}":
                return saved
        for name, saved in variables.items():
            value = value.replace("${" + name + "}", saved if isinstance(saved, str) else json.dumps(saved))
        return value
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {substitute(key, variables): substitute(item, variables) for key, item in value.items()}
    return value


def match(expected, actual, path="response"):
    if expected == "${any}":
        return
    if isinstance(expected, dict) and list(expected) == ["${contains}"]:
        contains(expected["${contains}"], actual, path)
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{path}: expected an object, got {json.dumps(actual)}")
        for key, value in expected.items():
            if value == "${absent}":
                if key in actual:
                    raise Mismatch(f"{path}: {key!r} should be absent, got {json.dumps(actual[key])}")
                continue
            if key not in actual:
                raise Mismatch(f"{path}: no {key!r} in {json.dumps(actual)}")
            match(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            raise Mismatch(f"{path}: expected {len(expected)} elements, got {json.dumps(actual)}")
        for index, (value, item) in enumerate(zip(expected, actual)):
            match(value, item, f"{path}[{index}]")
    elif isinstance(expected, bool) or isinstance(actual, bool):
        if expected is not actual:
            raise Mismatch(f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}")
    elif expected != actual:
        raise Mismatch(f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}")


def contains(wanted, actual, path):
    """`{"${contains}": [a, b]}`: an array with elements matching a, then b, in that order, others anywhere."""
    if not isinstance(wanted, list):
        raise Mismatch(f"{path}: ${{contains}} takes an array of elements to look for")
    if not isinstance(actual, list):
        raise Mismatch(f"{path}: expected an array, got {json.dumps(actual)}")
    found = 0
    for item in actual:
        if found == len(wanted):
            break
        try:
            match(wanted[found], item, path)
            found += 1
        except Mismatch:
            pass
    if found < len(wanted):
        raise Mismatch(f"{path}: no element matching {json.dumps(wanted[found])}"
                       + (" after the ones found before it" if found else "") + f" in {json.dumps(actual)}")


def pick(value, dotted):
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


class Connection:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.lines = self.sock.makefile("rb")
        self.notifications = []
        self.last_line = ""

    def write(self, line):
        try:
            self.sock.sendall(line.encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the broker stopped reading (an oversize line): its answer may still be there to read

    def read(self):
        while True:
            line = self.lines.readline()
            if not line:
                return None
            self.last_line = line.decode()
            value = json.loads(line)
            if isinstance(value, dict) and "method" in value and "id" not in value:
                self.notifications.append(value)  # from the broker; a `notification` step looks for it
                continue
            return value

    def notification(self):
        while not self.notifications:
            line = self.lines.readline()
            if not line:
                return None
            value = json.loads(line)
            if isinstance(value, dict) and "method" in value and "id" not in value:
                self.notifications.append(value)
            else:
                raise Mismatch(f"expected a notification, got {line.decode().strip()}")
        return self.notifications.pop(0)

    def closed(self):
        self.sock.settimeout(5)
        try:
            return self.lines.readline() == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def line_of(step, variables):
    if "send" in step:
        return json.dumps(substitute(step["send"], variables), separators=(",", ":"))
    if "send_line" in step:
        return substitute(step["send_line"], variables)
    if "repeat_line" in step:
        r = step["repeat_line"]
        return r["prefix"] + r["repeat"] * r["count"] + r["suffix"]
    raise Mismatch(f"a step needs send, send_line or repeat_line: {step}")


def check_schema(validator, sent, response):
    if validator is None or not isinstance(response, dict):
        return
    problems = [e.message for e in validator("envelope.response.json").iter_errors(response)]
    if isinstance(sent, dict) and "result" in response and isinstance(sent.get("method"), str):
        try:
            problems += [e.message for e in validator(f"methods/{sent['method']}.result.json").iter_errors(response["result"])]
        except Exception:
            pass
    if problems:
        raise Mismatch(f"the response breaks the schema: {problems[0][:300]}")


def run_step(connection, step, variables, validator=None, settle_s=0.0):
    """One step of a transcript on `connection`: anything with write(line), read() -> the next message that is
    not a notification (None once closed), notification(), closed(), and optionally last_line (the raw text of
    the last message read, for `expect_text`). Clients' replayers pass their own connection (see
    clients/python/tests/test_conformance.py); `settle_s` pauses after a step that reads nothing."""
    if "wait_ms" in step:
        time.sleep(step["wait_ms"] / 1000)
    if "notification" in step:
        got = connection.notification()
        if got is None:
            raise Mismatch("the connection closed before the broker's notification")
        match(substitute(step["notification"], variables), got, "notification")
        return
    group = step["pipeline"] if "pipeline" in step else [step]
    sent = []
    for item in group:
        connection.write(line_of(item, variables))
        sent.append(substitute(item.get("send"), variables))
    awaited = [(item, request) for item, request in zip(group, sent) if "expect" in item]
    if not awaited and settle_s:
        time.sleep(settle_s)
    responses, texts = [], []
    for _ in awaited:
        responses.append(connection.read())
        texts.append(getattr(connection, "last_line", None))
    if any(response is None for response in responses):
        raise Mismatch(f"the broker closed the connection instead of answering (got {responses})")
    if "answered_in" in step:
        arrival = [r.get("id") if isinstance(r, dict) else None for r in responses]
        if arrival != substitute(step["answered_in"], variables):
            raise Mismatch(f"answers came in the order {arrival}, expected {step['answered_in']}")
    if "pipeline" in step:
        by_id = {json.dumps(r.get("id")): r for r in responses if isinstance(r, dict)}
        pairs = []
        for item, request in awaited:
            key = json.dumps(substitute(item["expect"], variables).get("id"))
            if key not in by_id:
                raise Mismatch(f"no response with id {key} among {responses}")
            pairs.append((item, request, by_id[key]))
    else:
        pairs = [(item, request, response) for (item, request), response in zip(awaited, responses)]
        for (item, _), text in zip(awaited, texts):
            wanted = substitute(item.get("expect_text"), variables)
            if wanted is not None and text is not None and wanted not in text:
                raise Mismatch(f"the response line does not contain {wanted!r}: {text.strip()}")
    for item, request, response in pairs:
        match(substitute(item["expect"], variables), response)
        check_schema(validator, request, response)
        for name, dotted in item.get("save", {}).items():
            variables[name] = pick(response, dotted)
    if step.get("closes") and not connection.closed():
        raise Mismatch("the broker should have closed the connection")


def run(path, host, port, validator):
    transcript = json.loads(path.read_text())
    variables = {"queue": "conf-" + secrets.token_hex(6)}
    connection = Connection(host, port)
    for number, step in enumerate(transcript["steps"], 1):
        try:
            run_step(connection, step, variables, validator)
        except Mismatch as error:
            raise Mismatch(f"{path.name} step {number}: {error}") from None
    return transcript["name"]


def main():
    parser = argparse.ArgumentParser(description="Replay the conformance transcripts against a live broker.")
    parser.add_argument("--broker", default=os.environ.get("GANTRY_URL", "127.0.0.1:7440"))
    parser.add_argument("transcripts", nargs="*", type=pathlib.Path)
    options = parser.parse_args()
    host, port = options.broker.removeprefix("gantry://").rsplit(":", 1)
    validator = load_validators()
    paths = options.transcripts or sorted(TRANSCRIPTS.glob("*.json"))
    failed = 0
    for path in paths:
        try:
            name = run(path, host, int(port), validator)
            print(f"ok   {path.name}: {name}")
        except (Mismatch, OSError, json.JSONDecodeError) as error:
            failed += 1
            print(f"FAIL {error}")
    print(f"conformance: {len(paths) - failed} of {len(paths)} transcripts passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
