"""Tokens, roles and TLS against real brokers: one with TLS and tokens ($GANTRY_SECURE_URL), one that also
requires a client certificate ($GANTRY_MTLS_URL). scripts/with_broker.py sets these (and the CA, client
certificate and tokens below) when it starts them; without them these tests are skipped."""
import asyncio
import os
import time
import urllib.parse
import uuid

import pytest

import gantry
from conftest import wait_for
from gantry.aio import AsyncClient

NEEDED = ("GANTRY_SECURE_URL", "GANTRY_MTLS_URL", "GANTRY_TEST_CA", "GANTRY_TEST_CLIENT_CERT",
          "GANTRY_TEST_CLIENT_KEY", "GANTRY_TEST_ADMIN_TOKEN", "GANTRY_TEST_WORKER_TOKEN",
          "GANTRY_TEST_PRODUCER_TOKEN", "GANTRY_TEST_MAIL_PRODUCER_TOKEN")
pytestmark = pytest.mark.skipif(not all(os.environ.get(name) for name in NEEDED),
                                reason="needs the secure brokers of scripts/with_broker.py ($GANTRY_SECURE_URL...)")

env = os.environ.get
SECURE, MTLS, CA = env("GANTRY_SECURE_URL"), env("GANTRY_MTLS_URL"), env("GANTRY_TEST_CA")
ADMIN, WORKER, PRODUCER, MAIL_PRODUCER = (env("GANTRY_TEST_ADMIN_TOKEN"), env("GANTRY_TEST_WORKER_TOKEN"),
                                          env("GANTRY_TEST_PRODUCER_TOKEN"), env("GANTRY_TEST_MAIL_PRODUCER_TOKEN"))


@pytest.fixture(autouse=True)
def only_what_each_test_passes(monkeypatch):
    """The client's own variables would stand in for what a test leaves out on purpose."""
    for name in ("GANTRY_TOKEN", "GANTRY_CA_FILE", "GANTRY_CERT_FILE", "GANTRY_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def queue():
    return "sec-" + uuid.uuid4().hex[:12]


def with_token(url, token):
    scheme, _, address = url.partition("://")
    return f"{scheme}://{urllib.parse.quote(token, safe='')}@{address}"


def refused(call, code):
    with pytest.raises(gantry.RPCError) as caught:
        call()
    assert caught.value.code == code, caught.value
    return caught.value


def test_admin_token_and_ca_file(queue):
    with gantry.Client(SECURE, token=ADMIN, ca_file=CA) as client:
        assert "queues" in client.stats()
        job_id = client.enqueue("sec.admin", queue=queue)
        assert client.job(job_id)["state"] == "available"
        assert client.tls and client.connections_opened == 1
        assert ADMIN not in repr(client)


def test_without_ca_file_the_certificate_is_not_trusted():
    started = time.monotonic()
    with pytest.raises(gantry.TLSError) as caught:
        gantry.Client(SECURE, token=ADMIN, patience=30).stats()
    assert "ca_file" in str(caught.value) and "not trusted" in str(caught.value)
    assert time.monotonic() - started < 5  # raised at once, not retried for 30 s


def test_wrong_or_missing_token_is_unauthorized_and_not_retried():
    client = gantry.Client(SECURE, token="wrong-" + uuid.uuid4().hex, ca_file=CA, patience=30)
    started = time.monotonic()
    for _ in range(2):  # each call tries one connection, and says why
        error = refused(client.stats, -32001)
        assert error.name == "unauthorized" and not error.retryable
    assert time.monotonic() - started < 5 and client.connections_opened == 0
    client.close()
    refused(gantry.Client(SECURE, ca_file=CA, patience=30).stats, -32001)


def test_producer_enqueues_but_may_not_reserve(queue):
    with gantry.Client(SECURE, token=PRODUCER, ca_file=CA) as producer:
        job_id = producer.enqueue("sec.produce", {"n": 1}, queue=queue)
        assert producer.enqueue_batch([{"type": "sec.produce", "queue": queue}])
        assert producer.job(job_id)["state"] == "available" and "queues" in producer.stats()
        error = refused(lambda: producer.reserve(queue), -32009)
        assert error.name == "forbidden" and not error.retryable
        assert error.data.get("role") == "producer" and error.data.get("method") == "reserve"
        refused(lambda: producer.jobs_list(queue=queue), -32009)
        # A forbidden call leaves the connection usable.
        assert producer.job(job_id)["state"] == "available" and producer.connections_opened == 1


def test_worker_token_runs_a_producers_job(queue, start_worker):
    with gantry.Client(SECURE, token=PRODUCER, ca_file=CA) as producer:
        job_id = producer.enqueue("sec.work", {"to": "ana"}, queue=queue)
        worker = gantry.Worker(SECURE, [queue], concurrency=2, token=WORKER, ca_file=CA, poll_ms=200)
        worker.register("sec.work", lambda job: {"hello": job.args["to"]})
        running = start_worker(worker)
        wait_for(lambda: producer.job(job_id)["state"] == "completed", what="the job to complete")
        assert producer.job(job_id)["result"] == {"hello": "ana"}
        wait_for(lambda: worker.completed == 1, what="the worker to count the ack")
        worker.shutdown()
        running.join(10)
    with gantry.Client(SECURE, token=WORKER, ca_file=CA) as as_worker:
        refused(lambda: as_worker.enqueue("sec.work", queue=queue), -32009)


def test_worker_with_a_refused_token_or_role_stops_with_the_error(queue):
    for token, code in (("wrong-" + uuid.uuid4().hex, -32001), (PRODUCER, -32009)):
        worker = gantry.Worker(SECURE, [queue], token=token, ca_file=CA, poll_ms=200, patience=30)
        started = time.monotonic()
        with pytest.raises(gantry.RPCError) as caught:
            worker.run()
        assert caught.value.code == code and time.monotonic() - started < 5


def test_a_producer_limited_to_mail():
    with gantry.Client(SECURE, token=MAIL_PRODUCER, ca_file=CA) as producer:
        assert producer.enqueue("sec.mail", {"id": uuid.uuid4().hex}, queue="mail")
        error = refused(lambda: producer.enqueue("sec.mail", queue="other"), -32009)
        assert error.name == "forbidden" and error.data.get("queue") == "other"
        refused(lambda: producer.enqueue_batch([{"type": "sec.mail", "queue": "mail"},
                                                {"type": "sec.mail", "queue": "other"}]), -32009)


def test_token_in_the_url_and_precedence(monkeypatch):
    with gantry.Client(with_token(SECURE, ADMIN), ca_file=CA) as client:
        assert "queues" in client.stats()
    with gantry.Client(with_token(SECURE, "wrong"), token=ADMIN, ca_file=CA) as client:  # the keyword wins
        assert "queues" in client.stats()
    monkeypatch.setenv("GANTRY_TOKEN", "wrong")
    with gantry.Client(with_token(SECURE, ADMIN), ca_file=CA) as client:  # the URL beats the variable
        assert "queues" in client.stats()
    monkeypatch.setenv("GANTRY_TOKEN", ADMIN)
    monkeypatch.setenv("GANTRY_CA_FILE", CA)
    with gantry.Client(SECURE) as client:
        assert "queues" in client.stats()


def test_plain_client_to_the_tls_port_says_so():
    address = SECURE.partition("://")[2]
    with pytest.raises(gantry.ConnectionLost, match="gantrys://"):
        gantry.Client(f"gantry://{address}", token=ADMIN, patience=1, timeout=5).stats()


def test_async_client():
    async def main():
        async with AsyncClient(SECURE, token=ADMIN, ca_file=CA) as client:
            stats = await asyncio.gather(*(client.stats() for _ in range(10)))
            assert all("queues" in item for item in stats) and client.connections_opened == 1
        client = AsyncClient(SECURE, token="wrong-" + uuid.uuid4().hex, ca_file=CA, patience=30)
        started = time.monotonic()
        with pytest.raises(gantry.RPCError) as caught:
            await client.stats()
        assert caught.value.code == -32001 and time.monotonic() - started < 5 and client.connections_opened == 0
        await client.close()
        with pytest.raises(gantry.TLSError, match="ca_file"):
            await AsyncClient(SECURE, token=ADMIN, patience=30).stats()
        async with AsyncClient(with_token(SECURE, PRODUCER), ca_file=CA) as producer:
            with pytest.raises(gantry.RPCError) as caught:
                await producer.reserve("sec-async")
            assert caught.value.name == "forbidden"
    asyncio.run(asyncio.wait_for(main(), 60))


def test_mutual_tls():
    with gantry.Client(MTLS, token=ADMIN, ca_file=CA, cert_file=env("GANTRY_TEST_CLIENT_CERT"),
                       key_file=env("GANTRY_TEST_CLIENT_KEY")) as client:
        assert "queues" in client.stats()
    started = time.monotonic()
    with pytest.raises(gantry.ConnectionLost) as caught:
        gantry.Client(MTLS, token=ADMIN, ca_file=CA, patience=3).stats()
    assert "client certificate" in str(caught.value) and "cert_file" in str(caught.value)
    assert time.monotonic() - started < 8


def test_async_mutual_tls():
    async def main():
        async with AsyncClient(MTLS, token=ADMIN, ca_file=CA, cert_file=env("GANTRY_TEST_CLIENT_CERT"),
                               key_file=env("GANTRY_TEST_CLIENT_KEY")) as client:
            assert "queues" in await client.stats()
        with pytest.raises(gantry.ConnectionLost, match="cert_file"):
            await AsyncClient(MTLS, token=ADMIN, ca_file=CA, patience=3).stats()
    asyncio.run(asyncio.wait_for(main(), 60))
