"""Replays the conformance transcripts (proto-json/conformance/README.md) through gantry.Client's own connection:
lines go out with ``client._send_line`` and answers come from ``client._next_message`` (the reader thread's
messages that no call waits for, notifications already taken out). Replays every transcript in
proto-json/conformance/ and this client's own ones in tests/transcripts/."""
import json
import pathlib
import secrets
import sys

import pytest

import gantry

HERE = pathlib.Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "proto-json" / "conformance"
SETTLE_S = 0.15
TRANSCRIPTS = sorted(SHARED.glob("*.json")) + sorted((HERE / "transcripts").glob("*.json"))


# The replay loop and the transcript rules (substitution, subset matching, saved paths, how a step becomes a
# line) are the reference replayer's; only the connection is this client's.
sys.path.insert(0, str(HERE.parents[2] / "proto-json"))
from conformance import Mismatch, run_step as run_shared_step  # noqa: E402


class Replay:
    """One transcript's connection: a gantry.Client in raw mode, and the broker's notifications set aside
    while reading responses, for ``notification`` steps."""

    def __init__(self, url):
        self.client = gantry.Client(url, name="gantry-python-conformance", patience=5)
        self.notifications = []

    def write(self, line):
        try:
            self.client._send_line(line)
        except gantry.ConnectionLost:
            # The broker may close (or reset) while a line over its limit is still being written; its answer was
            # read by the reader thread before that, and a step that did not expect the close fails on reading.
            pass

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
    # Every line runs concurrently on the broker, so a later request can overtake a notification sent before it
    # (04-batches-and-notifications.json counts a notification's enqueue three lines later): a short pause after
    # a step that reads nothing keeps the replay from racing it (it changes no expectation).
    run_shared_step(connection, step, variables, settle_s=SETTLE_S)


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
