import datetime
import threading
import time

import pytest

import gantry
from conftest import wait_for


def test_enqueue_and_job_round_trip(url, queue):
    with gantry.Client(url, name="pytest") as client:
        run_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        later = client.enqueue("report.build", [2026, 1], queue=queue, run_at=run_at, max_attempts=3,
                               timeout_ms=600_000, tags=["reports"], meta={"trace_id": "4bf9"}, unique_key="r-1")
        now = client.enqueue("email.send", {"to": "ana@example.com", "n": 1.5, "ü": [None, True]}, queue=queue,
                             priority=10)
        assert isinstance(now, str) and isinstance(later, str)

        job = client.job(later)
        assert job["state"] == "scheduled"
        assert (job["type"], job["args"], job["queue"]) == ("report.build", [2026, 1], queue)
        assert (job["max_attempts"], job["timeout_ms"], job["tags"], job["meta"]) == (3, 600_000, ["reports"],
                                                                                       {"trace_id": "4bf9"})
        assert job["unique_key"] == "r-1"
        assert job["run_at"].startswith(run_at.strftime("%Y-%m-%dT%H:%M"))

        job = client.job(now)
        assert (job["state"], job["priority"], job["attempt"]) == ("available", 10, 0)
        assert job["args"] == {"to": "ana@example.com", "n": 1.5, "ü": [None, True]}

        [reserved] = client.reserve(queue, max=5, lease_ms=60_000)
        assert (reserved["id"], reserved["attempt"], reserved["meta"]) == (now, 1, {})
        assert client.extend([now], lease_ms=30_000)["lost"] == []
        assert client.ack(now, {"message_id": "<1@example.com>"}) == {"ok": True}
        job = client.job(now)
        assert job["state"] == "completed" and job["result"] == {"message_id": "<1@example.com>"}
        assert client.session_id and client.connections_opened == 1


def test_enqueue_batch_delay_and_nack(url, queue):
    with gantry.Client(url) as client:
        ids = client.enqueue_batch([{"type": "thumb.make", "args": ["img/1.png"], "queue": queue},
                                    {"type": "thumb.make", "args": ["img/2.png"], "queue": queue, "priority": 100},
                                    {"type": "thumb.make", "queue": queue, "delay_ms": 60_000}])
        assert len(ids) == 3 and len(set(ids)) == 3
        assert client.job(ids[2])["state"] == "scheduled"
        jobs = client.reserve([queue], max=10)
        assert [job["id"] for job in jobs] == [ids[1], ids[0]]  # priority first
        try:
            raise FileNotFoundError("image not found: img/2.png")
        except FileNotFoundError as error:
            answer = client.nack(ids[1], error)
        assert answer["state"] == "scheduled" and "next_run_at" in answer
        assert client.nack(ids[0], "unsupported format", kind="ValueError", retry=False) == {"state": "dead"}
        [failure] = client.job(ids[1])["errors"]
        assert failure["kind"] == "FileNotFoundError" and failure["message"] == "image not found: img/2.png"
        assert failure["reason"] == "nack" and any("FileNotFoundError" in line for line in failure["backtrace"])
        assert client.job(ids[0])["errors"][0]["kind"] == "ValueError"


def test_errors_carry_code_name_message_and_field(url, queue):
    with gantry.Client(url) as client:
        with pytest.raises(gantry.RPCError) as caught:
            client.enqueue("email.send", queue=queue, priority=0)
        error = caught.value
        assert (error.code, error.name, error.field) == (-32602, "invalid_params", "priority")
        assert "between 1" in error.message and error.data == {"field": "priority"} and not error.retryable

        with pytest.raises(gantry.RPCError) as caught:
            client.enqueue_batch([{"type": "a", "queue": queue}, {"type": "b", "queue": "bad queue!"}])
        assert (caught.value.name, caught.value.field) == ("invalid_params", "jobs[1].queue")

        with pytest.raises(gantry.RPCError) as caught:
            client.job("999999999")
        assert (caught.value.code, caught.value.name, caught.value.data) == (-32002, "not_found", {"id": "999999999"})

        with pytest.raises(gantry.RPCError) as caught:
            client.call("jobs.fetch", {"id": "1"})
        assert (caught.value.code, caught.value.name) == (-32601, "method_not_found")
        assert caught.value.data == {"method": "jobs.fetch"} and caught.value.field is None

        job_id = client.enqueue("x", queue=queue)
        with pytest.raises(gantry.RPCError) as caught:
            client.ack(job_id)
        assert (caught.value.code, caught.value.name) == (-32003, "lease_lost")
        assert caught.value.data == {"id": job_id, "state": "available"}

        with pytest.raises(gantry.RPCError) as caught:
            client.call("stats", {"verbose": True})
        assert caught.value.field == "verbose"
        with pytest.raises(gantry.RPCError) as caught:
            client.reserve(queue, wait_ms=600_000)
        assert caught.value.field == "wait_ms"
        with pytest.raises(ValueError):  # refused before sending: NaN is not JSON
            client.enqueue("x", {"n": float("nan")}, queue=queue)
        with pytest.raises(ValueError, match="too large"):  # gantryd would answer with id null
            client.enqueue("x", {"n": [10 ** 400]}, queue=queue)
        assert client.job(client.enqueue("x", ["9" * 400], queue=queue))["args"] == ["9" * 400]
        assert client.stats()["broker"]["version"]  # the connection is still fine
        assert client.connections_opened == 1


def test_ack_many_acks_several_and_reports_lost_ones(url, queue):
    with gantry.Client(url) as client:
        ids = client.enqueue_batch([{"type": "py.many", "args": [n], "queue": queue} for n in range(4)])
        assert sorted(job["id"] for job in client.reserve(queue, max=4)) == sorted(ids)
        assert client.ack(ids[3]) == {"ok": True}
        answer = client.ack_many(ids[:3], results={ids[0]: {"n": 0}})
        assert answer == {"ok": True, "acked": ids[:3], "lost": []}
        jobs = [client.job(job_id) for job_id in ids]
        assert {job["state"] for job in jobs} == {"completed"}
        assert [job.get("result") for job in jobs] == [{"n": 0}, None, None, None]

        late = client.enqueue("py.many", queue=queue)  # never reserved: its lease is not held
        answer = client.ack_many([ids[1], late, "999999997"])
        assert answer["ok"] is False and answer["acked"] == []
        assert answer["lost"] == [{"id": ids[1], "state": "completed"}, {"id": late, "state": "available"},
                                  {"id": "999999997"}]

        with pytest.raises(gantry.RPCError) as caught:
            client.ack_many([late, late])
        assert (caught.value.code, caught.value.field) == (-32602, "ids[1]")
        with pytest.raises(gantry.RPCError) as caught:
            client.ack_many([late], results={ids[0]: True})
        assert caught.value.field == f"results.{ids[0]}"


def test_addresses():
    assert gantry.Client("gantry://10.0.0.1:7441").port == 7441
    assert (gantry.Client("example.com").host, gantry.Client("example.com").port) == ("example.com", 7440)
    assert gantry.Client("[::1]:7000").host == "::1"
    for bad in ("gantry://:7440", "host:port", "host:0"):
        with pytest.raises(ValueError):
            gantry.Client(bad)


def test_unreachable_broker_is_connection_lost():
    server = __import__("socket").create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()
    client = gantry.Client(f"127.0.0.1:{port}", patience=0.3)
    with pytest.raises(gantry.ConnectionLost, match="is gantryd running"):
        client.stats()


def test_many_threads_share_one_pipelined_connection(url, queue):
    client = gantry.Client(url, name="pytest-threads")
    ids, errors, slowest = [], [], [0.0]
    lock = threading.Lock()
    # A long poll on an empty queue is in flight the whole time; it must hold up none of the other calls (one
    # that waited behind it would take about 6 s).
    poll = {}

    def long_poll():
        try:
            poll["jobs"] = client.reserve(queue + "-empty", wait_ms=6000)
        except gantry.ConnectionLost as error:
            poll["lost"] = error

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.1)

    def work(thread):
        try:
            for n in range(10):
                started = time.monotonic()
                job_id = client.enqueue("py.thread", {"thread": thread, "n": n}, queue=queue)
                assert client.job(job_id)["args"] == {"thread": thread, "n": n}
                with lock:
                    ids.append(job_id)
                    slowest[0] = max(slowest[0], time.monotonic() - started)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors[:3]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert slowest[0] < 3, f"a call waited {slowest[0]:.1f} s: behind the long poll?"
    assert client.connections_opened == 1
    assert client.stats()["queues"][queue]["counts"]["available"] == 200
    if not poll:  # still polling: closing the client ends it
        client.close()
        poller.join(5)
        assert "lost" in poll
    assert poll.get("jobs", []) == []
    client.close()


def test_reconnects_on_the_next_call_with_hello(url, queue):
    client = gantry.Client(url, name="pytest-reconnect")
    client.enqueue("x", queue=queue)
    first = client.session_id
    lost = threading.Event()
    pending = threading.Thread(target=lambda: _expect_lost(client, queue, lost))
    pending.start()
    time.sleep(0.3)
    client._conn.sock.shutdown(2)  # the connection drops under a waiting call
    pending.join(5)
    assert lost.is_set()
    assert client.enqueue("x", queue=queue)
    assert client.connections_opened == 2 and client.session_id != first
    client.close()
    assert client.stats()  # close() then a call opens a new connection
    assert client.connections_opened == 3
    client.close()


def _expect_lost(client, queue, lost):
    try:
        client.reserve(queue + "-empty", wait_ms=5000)
    except gantry.ConnectionLost:
        lost.set()


def test_oversize_request_loses_the_connection_then_recovers(url, queue):
    with gantry.Client(url) as client:
        client.stats()
        with pytest.raises(gantry.ConnectionLost) as caught:
            client.enqueue("pdf.render", ["x" * (2 << 20)], queue=queue)
        assert "payload_too_large" in str(caught.value) or "send" in str(caught.value)
        assert client.enqueue("pdf.render", ["small"], queue=queue)


def test_worker_hello_and_notifications(url, admin, queue):
    heard = []
    worker_id = "pytest-notify-" + queue
    client = gantry.Client(url, name="pytest-notified", on_notification=lambda method, params: heard.append(method),
                           worker={"id": worker_id, "queues": [queue], "concurrency": 3,
                                   "handlers": [{"type": "a"}, {"type": "b"}]})
    client.stats()
    [listed] = [w for w in admin.workers_list() if w["id"] == worker_id]
    assert (listed["client"], listed["queues"], listed["concurrency"], listed["handlers"], listed["state"]) == (
        "pytest-notified", [queue], 3, ["a", "b"], "running")
    assert listed["session_id"] == client.session_id

    result = {}
    poller = threading.Thread(target=lambda: result.setdefault("jobs", client.reserve(queue, wait_ms=1500)))
    poller.start()
    time.sleep(0.2)
    assert admin.workers_quiet(worker_id) == 1
    wait_for(lambda: heard == ["worker.quiet"], what="worker.quiet")
    admin.enqueue("a", queue=queue)
    poller.join(5)
    assert result["jobs"] == []  # a quiet worker gets nothing; the notification was no response
    assert admin.workers_stop(client.session_id) == 1
    wait_for(lambda: heard == ["worker.quiet", "worker.stop"], what="worker.stop")
    assert [w["state"] for w in admin.workers_list() if w["id"] == worker_id] == ["stopping"]
    assert admin.workers_quiet("nobody-" + queue) == 0
    client.close()


def test_notification_callback_may_call_the_client(url, admin, queue):
    answers = []
    worker_id = "pytest-callback-" + queue

    def on_notification(method, params):
        answers.append((method, client.stats()["broker"]["version"]))

    client = gantry.Client(url, worker={"id": worker_id, "queues": [queue]}, on_notification=on_notification)
    client.stats()
    admin.workers_quiet(worker_id)
    wait_for(lambda: answers, what="the callback's call")
    assert answers[0][0] == "worker.quiet"
    client.close()


def test_operator_methods(url, admin, queue):
    with gantry.Client(url) as client:
        first = client.enqueue("op.a", queue=queue, tags=["t1"])
        second = client.enqueue("op.b", queue=queue)
        page = client.jobs_list(queue=queue, limit=1)
        assert [job["id"] for job in page["jobs"]] == [second] and page["next_cursor"]
        rest = client.jobs_list(queue=queue, cursor=page["next_cursor"])
        assert [job["id"] for job in rest["jobs"]] == [first]
        assert [job["id"] for job in client.jobs_list(tag="t1", queue=queue)["jobs"]] == [first]

        assert client.jobs_cancel(first) == {"id": first, "state": "cancelled"}
        assert client.jobs_retry(first) == {"id": first, "state": "available"}
        with pytest.raises(gantry.RPCError) as caught:
            client.jobs_retry(second)
        assert (caught.value.name, caught.value.data["state"]) == ("wrong_state", "available")

        assert client.queues_pause(queue) == {"paused": True, "queue": queue}
        assert client.queues_list()[queue]["paused"] is True
        assert client.reserve(queue) == []
        assert client.queues_resume(queue)["paused"] is False
        assert len(client.reserve(queue, max=10)) == 2
        stats = client.stats()
        assert stats["queues"][queue]["counts"]["reserved"] == 2 and stats["broker"]["connections"] >= 1
        assert client.cleanup(0, queue=queue)["deleted"] == 0
        third = client.enqueue("op.c", queue=queue)
        assert client.jobs_discard(third) == {"discarded": True, "id": third}


def test_storage_unavailable_with_nothing_applied_is_resent(fake_broker):
    tries = []

    def answer(request):
        tries.append(request["method"])
        if len(tries) < 3:
            return [{"jsonrpc": "2.0", "id": request["id"], "error": {
                "code": -32004, "message": "PostgreSQL is away", "data": {"retryable": True, "applied": False}}}]
        return [{"jsonrpc": "2.0", "id": request["id"], "result": {"id": "7", "state": "available"}}]

    broker = fake_broker(answer)
    client = gantry.Client(broker.url)
    assert client.enqueue("x") == "7"
    assert tries == ["enqueue"] * 3
    assert [request["method"] for request in broker.requests] == ["hello"] + ["enqueue"] * 3
    assert len({request["id"] for request in broker.requests}) == 4  # each resend has a fresh id


def test_storage_unavailable_with_unknown_outcome_is_not_resent(fake_broker):
    def answer(request):
        return [{"jsonrpc": "2.0", "id": request["id"], "error": {
            "code": -32004, "message": "outcome unknown", "data": {"retryable": True}}}]

    broker = fake_broker(answer)
    with pytest.raises(gantry.RPCError) as caught:
        gantry.Client(broker.url).enqueue("x")
    assert (caught.value.name, caught.value.retryable) == ("storage_unavailable", True)
    assert [request["method"] for request in broker.requests] == ["hello", "enqueue"]


def test_storage_retry_is_bounded(fake_broker):
    def answer(request):
        return [{"jsonrpc": "2.0", "id": request["id"], "error": {
            "code": -32004, "message": "away", "data": {"retryable": True, "applied": False}}}]

    broker = fake_broker(answer)
    started = time.monotonic()
    with pytest.raises(gantry.RPCError):
        gantry.Client(broker.url, patience=0.5).stats()
    assert time.monotonic() - started < 1.5
    assert 2 <= len(broker.requests) - 1 <= 5


def test_out_of_order_answers_and_interleaved_notifications(fake_broker):
    held = []
    heard = []

    def answer(request):
        if request["params"]["n"] == 1:
            held.append(request)
            return []
        return [{"jsonrpc": "2.0", "method": "worker.quiet"},
                {"jsonrpc": "2.0", "id": request["id"], "result": {"n": 2}},
                {"jsonrpc": "2.0", "method": "future.thing", "params": {"x": 1}},
                {"jsonrpc": "2.0", "id": held[0]["id"], "result": {"n": 1}}]

    broker = fake_broker(answer)
    client = gantry.Client(broker.url, on_notification=lambda method, params: heard.append((method, params)))
    results = {}
    first = threading.Thread(target=lambda: results.setdefault(1, client.call("echo", {"n": 1})))
    first.start()
    wait_for(lambda: held, what="the first request")
    results[2] = client.call("echo", {"n": 2})
    first.join(5)
    assert results == {1: {"n": 1}, 2: {"n": 2}}
    wait_for(lambda: len(heard) == 2, what="two notifications")
    assert heard == [("worker.quiet", None), ("future.thing", {"x": 1})]
