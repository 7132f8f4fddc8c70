"""Replays the conformance transcripts (proto-json/conformance/README.md) through gantry.Client's own connection:
lines go out with ``client._send_line`` and answers come from ``client._next_message`` (the reader thread's
messages that no call waits for, notifications already taken out). Replays every transcript in
proto-json/conformance/ and this client's own ones in tests/transcripts/."""
import json
import pathlib
import secrets
import sys
import time

import pytest

import gantry

HERE = pathlib.Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "proto-json" / "conformance"
SETTLE_S = 0.15
TRANSCRIPTS = sorted(SHARED.glob("*.json")) + sorted((HERE / "transcripts").glob("*.json"))


# The transcript rules (substitution, subset matching, saved paths, how a step becomes a line) are the
# reference replayer's; only the connection is this client's.
sys.path.insert(0, str(HERE.parents[2] / "proto-json"))
from conformance import Mismatch, line_of, match, pick, substitute  # noqa: E402


class Replay:
    """One transcript's connection: a gantry.Client in raw mode, and the broker's notifications set aside
    while reading responses, for ``notification`` steps."""

    def __init__(self, url):
        self.client = gantry.Client(url, name="gantry-python-conformance", patience=5)
        self.notifications = []

    def send(self, line):
        self.client._send_line(line)

    @staticmethod
    def is_notification(message):
        return isinstance(message, dict) and "method" in message and "id" not in message

    def read(self, timeout=30):
        while True:
            message = self.client._next_message(timeout)
            if not self.is_notification(message):
                return message
            self.notifications.append(message)

    def notification(self, timeout=30):
        while not self.notifications:
            message = self.client._next_message(timeout)
            if message is None:
                return None
            if not self.is_notification(message):
                raise Mismatch(f"expected a notification, got {json.dumps(message)[:500]}")
            self.notifications.append(message)
        return self.notifications.pop(0)

    def closed(self):
        try:
            return self.client._next_message(timeout=5) is None
        except TimeoutError:
            return False

    def close(self):
        self.client.close()


def replay(path, url):
    transcript = json.loads(path.read_text())
    variables = {"queue": "conf-" + secrets.token_hex(6)}
    connection = Replay(url)
    try:
        for number, step in enumerate(transcript["steps"], 1):
            try:
                run_step(connection, step, variables)
            except Mismatch as error:
                raise Mismatch(f"{path.name} step {number}: {error}") from None
    finally:
        connection.close()


def run_step(connection, step, variables):
    if "wait_ms" in step:
        time.sleep(step["wait_ms"] / 1000)
    if "notification" in step:
        got = connection.notification()
        if got is None:
            raise Mismatch("the connection closed before the broker's notification")
        match(substitute(step["notification"], variables), got, "notification")
        return
    group = step["pipeline"] if "pipeline" in step else [step]
    for item in group:
        try:
            connection.send(line_of(item, variables))
        except gantry.ConnectionLost:
            if not step.get("closes"):
                raise
            # The broker may close (or reset) while a line over its limit is still being written; its answer
            # was read by the reader thread before that.
    awaited = [item for item in group if "expect" in item]
    if not awaited:
        # Nothing to read (a notification). Every line runs concurrently on the broker, so a later request can
        # overtake it: 04-batches-and-notifications.json counts a notification's enqueue three lines later,
        # which fails now and then on a loaded machine. A short pause keeps the replay from racing it (it
        # changes no expectation; the reference replayer has the same race).
        time.sleep(SETTLE_S)
    responses = [connection.read() for _ in awaited]
    if any(response is None for response in responses):
        raise Mismatch(f"the broker closed the connection instead of answering (got {responses})")
    if "answered_in" in step:
        arrival = [r.get("id") if isinstance(r, dict) else None for r in responses]
        if arrival != substitute(step["answered_in"], variables):
            raise Mismatch(f"answers came in the order {arrival}, expected {step['answered_in']}")
    if "pipeline" in step:
        by_id = {json.dumps(r.get("id")): r for r in responses if isinstance(r, dict)}
        pairs = []
        for item in awaited:
            key = json.dumps(substitute(item["expect"], variables).get("id"))
            if key not in by_id:
                raise Mismatch(f"no response with id {key} among {responses}")
            pairs.append((item, by_id[key]))
    else:
        pairs = list(zip(awaited, responses))
    for item, response in pairs:
        match(substitute(item["expect"], variables), response)
        for name, dotted in item.get("save", {}).items():
            variables[name] = pick(response, dotted)
    if step.get("closes") and not connection.closed():
        raise Mismatch("the broker should have closed the connection")


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in TRANSCRIPTS])
def test_transcript(path, url):
    replay(path, url)


def test_the_replay_sees_what_the_transcripts_check(url):
    """The replay itself: a wrong expectation fails, and an answer nobody expected is not swallowed."""
    step = {"send": {"jsonrpc": "2.0", "id": 1, "method": "stats"}, "expect": {"id": 1, "result": {"queues": []}}}
    connection = Replay(url)
    with pytest.raises(Mismatch):
        run_step(connection, step, {})
    run_step(connection, {"send": {"jsonrpc": "2.0", "id": 2, "method": "stats"}}, {})  # as if a notification
    with pytest.raises(Mismatch, match="expected 3"):
        run_step(connection, {"wait_ms": 300, "send": {"jsonrpc": "2.0", "id": 3, "method": "stats"},
                              "expect": {"id": 3}}, {})
    with pytest.raises(Mismatch, match="expected a notification"):
        run_step(connection, {"pipeline": [{"send": {"jsonrpc": "2.0", "id": 4, "method": "stats"}}]}, {})
        run_step(connection, {"notification": {"method": "worker.quiet"}}, {})
    with pytest.raises(Mismatch, match="order"):
        run_step(connection, {"answered_in": [6, 5], "pipeline": [
            {"send": {"jsonrpc": "2.0", "id": 5, "method": "stats"}, "expect": {"id": 5}},
            {"send": {"jsonrpc": "2.0", "id": 6, "method": "reserve", "params": {"queues": ["q"], "wait_ms": 300}},
             "expect": {"id": 6}}]}, {})
    connection.close()
