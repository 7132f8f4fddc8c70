"""Shared fixtures. The tests talk to a real broker at $GANTRY_URL:

    python3 scripts/with_broker.py -- python3 -m pytest -q clients/python/tests
"""
import json
import os
import pathlib
import secrets
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import gantry  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "no_broker: the module's tests need no broker (they run without GANTRY_URL)")


def pytest_collection_modifyitems(config, items):
    """Without GANTRY_URL only modules marked ``no_broker`` may run; anything else stops the run at once."""
    if os.environ.get("GANTRY_URL"):
        return
    if any(item.get_closest_marker("no_broker") is None for item in items):
        raise pytest.UsageError(
            "GANTRY_URL is not set. These tests need a real broker; run them with\n"
            "  python3 scripts/with_broker.py -- python3 -m pytest -q clients/python/tests\n"
            "(it starts a throwaway gantryd and sets GANTRY_URL), or set GANTRY_URL=host:port of a gantryd.\n"
            "(tests/test_security_local.py needs no broker.)")


@pytest.fixture(scope="session")
def url():
    return os.environ["GANTRY_URL"]


@pytest.fixture(scope="session")
def admin(url):
    """An operator's client, shared by the tests."""
    with gantry.Client(url, name="pytest-admin") as client:
        yield client


@pytest.fixture
def queue():
    """A queue name no other test uses."""
    return "py-" + secrets.token_hex(6)


def wait_for(predicate, timeout=10.0, interval=0.05, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class FakeBroker:
    """A scripted stand-in for gantryd, for what a real broker will not do on demand (storage_unavailable).
    ``answer(request)`` returns the lines (dicts) to send back for each request line."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = "127.0.0.1:%d" % self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                request = json.loads(line)
                self.requests.append(request)
                if request["method"] == "hello":
                    replies = [{"jsonrpc": "2.0", "id": request["id"], "result": {
                        "broker": "fake", "protocol": 1, "session_id": secrets.token_hex(16)}}]
                else:
                    replies = self.answer(request) or []
                for reply in replies:
                    conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self):
        self.server.close()


@pytest.fixture
def fake_broker():
    brokers = []

    def start(answer):
        broker = FakeBroker(answer)
        brokers.append(broker)
        return broker
    yield start
    for broker in brokers:
        broker.close()


class RunningWorker:
    """A gantry.Worker running in a thread, stopped at the end of the test."""

    def __init__(self, worker):
        self.worker = worker
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.worker.run()
        except BaseException as error:  # surfaced by join()
            self.error = error

    def join(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the worker did not return within {timeout} s"
        if self.error is not None:
            raise self.error


@pytest.fixture
def start_worker():
    running = []

    def start(worker):
        running.append(RunningWorker(worker))
        return running[-1]
    yield start
    for item in running:
        if item.thread.is_alive():
            item.worker.stop()
            item.thread.join(10)
