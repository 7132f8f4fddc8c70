import threading
import time

import gantry
from conftest import wait_for


def state_of(admin, job_id):
    return admin.job(job_id)["state"]


def test_worker_completes_fails_and_buries(url, admin, queue, start_worker):
    worker = gantry.Worker(url, [queue], concurrency=4, id="pytest-w-" + queue, poll_ms=500)

    @worker.handler("py.ok")
    def ok(job):
        return {"double": job.args["n"] * 2, "attempt": job.attempt, "meta": job.meta}

    def fail(job):
        raise ValueError(f"bad input {job.args['n']}")

    def bury(job):
        raise gantry.PermanentError("cannot ever work")

    worker.register("py.fail", fail)
    worker.register("py.bury", bury)
    done = admin.enqueue("py.ok", {"n": 21}, queue=queue, meta={"trace": "t"})
    failed = admin.enqueue("py.fail", {"n": 1}, queue=queue)
    last_try = admin.enqueue("py.fail", {"n": 2}, queue=queue, max_attempts=1)
    buried = admin.enqueue("py.bury", queue=queue)
    unknown = admin.enqueue("py.nobody", queue=queue)
    running = start_worker(worker)

    wait_for(lambda: state_of(admin, done) == "completed", what="the ok job")
    assert admin.job(done)["result"] == {"double": 42, "attempt": 1, "meta": {"trace": "t"}}

    wait_for(lambda: state_of(admin, failed) == "scheduled", what="the failed job to be retried later")
    [error] = admin.job(failed)["errors"]
    assert (error["kind"], error["message"], error["reason"]) == ("ValueError", "bad input 1", "nack")
    assert error["worker"] == worker.id
    assert error["backtrace"][0].startswith("Traceback") and "ValueError: bad input 1" in error["backtrace"][-1]
    assert any("in fail" in line for line in error["backtrace"])

    wait_for(lambda: state_of(admin, last_try) == "dead", what="the job with no attempts left")
    wait_for(lambda: state_of(admin, buried) == "dead", what="the PermanentError job")
    buried_job = admin.job(buried)
    assert buried_job["attempt"] == 1 and buried_job["max_attempts"] == 25  # no retry, attempts left or not
    assert buried_job["errors"][0]["kind"] == "PermanentError"
    wait_for(lambda: state_of(admin, unknown) == "scheduled", what="the job without a handler")
    assert admin.job(unknown)["errors"][0]["kind"] == "UnknownJobType"
    assert (worker.completed, worker.failed) == (1, 4)

    [listed] = [w for w in admin.workers_list() if w["id"] == worker.id]
    assert (listed["client"], listed["queues"], listed["concurrency"], listed["handlers"]) == (
        "gantry-python-worker", [queue], 4, ["py.bury", "py.fail", "py.ok"])
    worker.shutdown()
    running.join(5)


def test_worker_concurrency_and_queue_order(url, admin, queue, start_worker):
    active, peak, order = [0], [0], []
    lock = threading.Lock()

    def slow(job):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            order.append(job.args)
        time.sleep(0.3)
        with lock:
            active[0] -= 1

    admin.enqueue_batch([{"type": "py.slow", "args": ["low", n], "queue": queue + "-low"} for n in range(3)])
    admin.enqueue_batch([{"type": "py.slow", "args": ["high", n], "queue": queue + "-high"} for n in range(3)])
    worker = gantry.Worker(url, [queue + "-high", queue + "-low"], concurrency=1, handlers={"py.slow": slow},
                           poll_ms=500)
    running = start_worker(worker)
    wait_for(lambda: worker.completed == 6, what="six jobs")
    assert order == [["high", 0], ["high", 1], ["high", 2], ["low", 0], ["low", 1], ["low", 2]]
    worker.shutdown()
    running.join(5)

    peak[0] = 0
    ids = admin.enqueue_batch([{"type": "py.slow", "args": n, "queue": queue} for n in range(8)])
    worker = gantry.Worker(url, queue, concurrency=4, handlers={"py.slow": slow}, poll_ms=500)
    running = start_worker(worker)
    started = time.monotonic()
    wait_for(lambda: worker.completed == 8, what="eight jobs")
    assert peak[0] == 4 and time.monotonic() - started < 6
    assert {state_of(admin, job_id) for job_id in ids} == {"completed"}
    worker.shutdown()
    running.join(5)


def test_worker_extends_leases_of_long_jobs(url, admin, queue, start_worker):
    job_id = admin.enqueue("py.long", queue=queue)
    worker = gantry.Worker(url, [queue], concurrency=1, lease_ms=1200, poll_ms=500,
                           handlers={"py.long": lambda job: time.sleep(2.6) or "done"})
    running = start_worker(worker)
    wait_for(lambda: state_of(admin, job_id) == "completed", timeout=8, what="the long job")
    job = admin.job(job_id)
    assert job["errors"] == [] and job["attempt"] == 1 and job["result"] == "done"
    worker.shutdown()
    running.join(5)


def test_worker_hears_an_operator_cancel_and_does_not_retry(url, admin, queue, start_worker):
    seen = {}
    reserved = threading.Event()

    def cancellable(job):
        reserved.set()
        job.interrupted.wait(10)
        seen["cancel_requested"] = job.cancel_requested
        raise RuntimeError("stopped: cancelled by an operator")

    job_id = admin.enqueue("py.cancel", queue=queue)
    worker = gantry.Worker(url, [queue], lease_ms=1500, poll_ms=500, handlers={"py.cancel": cancellable})
    running = start_worker(worker)
    assert reserved.wait(5)
    assert admin.jobs_cancel(job_id)["state"] == "reserved"
    wait_for(lambda: state_of(admin, job_id) == "cancelled", timeout=5, what="the cancelled job")
    assert seen == {"cancel_requested": True}
    job = admin.job(job_id)
    assert job["errors"][-1]["kind"] == "RuntimeError" and job["attempt"] == 1
    worker.shutdown()
    running.join(5)


def test_worker_obeys_quiet_then_stop(url, admin, queue, start_worker):
    release = threading.Event()
    started = threading.Event()

    def blocking(job):
        started.set()
        release.wait(10)
        return "finished"

    first = admin.enqueue("py.block", queue=queue)
    worker = gantry.Worker(url, [queue], concurrency=2, id="pytest-quiet-" + queue, handlers={"py.block": blocking})
    running = start_worker(worker)
    assert started.wait(5)
    assert admin.workers_quiet(worker.id) == 1
    wait_for(lambda: worker.quiet, what="the worker to hear worker.quiet")
    later = admin.enqueue("py.block", queue=queue)
    release.set()  # the running job finishes and is acked
    wait_for(lambda: state_of(admin, first) == "completed", what="the running job to finish")
    time.sleep(2.5)  # longer than a poll: a quiet worker reserves nothing more
    assert state_of(admin, later) == "available"
    assert running.thread.is_alive()  # and keeps running until stopped
    assert [w["state"] for w in admin.workers_list() if w["id"] == worker.id] == ["quiet"]

    stopped_at = time.monotonic()
    assert admin.workers_stop(worker.id) == 1
    running.join(5)
    assert time.monotonic() - stopped_at < 6
    assert state_of(admin, later) == "available" and admin.job(later)["attempt"] == 0
    assert not [w for w in admin.workers_list() if w["id"] == worker.id]


def test_worker_stop_hands_running_jobs_back(url, admin, queue, start_worker):
    release = threading.Event()
    seen = []

    def blocking(job):
        seen.append(job)
        release.wait(20)
        return "too late"

    ids = admin.enqueue_batch([{"type": "py.block", "args": n, "queue": queue} for n in range(2)])
    worker = gantry.Worker(url, [queue], concurrency=2, id="pytest-stop-" + queue, handlers={"py.block": blocking})
    running = start_worker(worker)
    wait_for(lambda: len(seen) == 2, what="both jobs to start")
    stopped_at = time.monotonic()
    assert admin.workers_stop(worker.id) == 1
    running.join(5)
    assert time.monotonic() - stopped_at < 6
    for job_id in ids:
        job = admin.job(job_id)
        assert job["state"] == "available"  # handed back for a retry at once
        error = job["errors"][-1]
        assert (error["kind"], error["reason"], job["attempt"]) == ("WorkerStopped", "nack", 1)
    assert all(job.stop_requested and job.interrupted.is_set() for job in seen)
    release.set()
    time.sleep(0.2)  # the old handlers return now; their results are dropped
    assert {state_of(admin, job_id) for job_id in ids} == {"available"}

    # Another worker takes them at once.
    worker = gantry.Worker(url, [queue], concurrency=2, handlers={"py.block": lambda job: job.attempt}, poll_ms=500)
    running = start_worker(worker)
    wait_for(lambda: {state_of(admin, job_id) for job_id in ids} == {"completed"}, what="the retries")
    assert [admin.job(job_id)["result"] for job_id in ids] == [2, 2]
    worker.stop()
    running.join(5)


def test_local_shutdown_finishes_and_local_stop_hands_back(url, admin, queue, start_worker):
    started = threading.Event()

    def short(job):
        started.set()
        time.sleep(0.5)
        return "ok"

    job_id = admin.enqueue("py.short", queue=queue)
    worker = gantry.Worker(url, [queue], handlers={"py.short": short}, poll_ms=500)
    running = start_worker(worker)
    assert started.wait(5)
    worker.shutdown()
    running.join(5)
    assert state_of(admin, job_id) == "completed"

    started.clear()
    job_id = admin.enqueue("py.long", queue=queue)
    worker = gantry.Worker(url, [queue], handlers={"py.long": lambda job: started.set() or job.interrupted.wait(10)},
                           poll_ms=500)
    running = start_worker(worker)
    assert started.wait(5)
    worker.stop()
    running.join(5)
    job = admin.job(job_id)
    assert job["state"] == "available" and job["errors"][-1]["kind"] == "WorkerStopped"


# Acks of jobs that finish together. To see a batch without relying on timing, the first ack (sent alone, as
# none is in flight) is held until every other job has finished and waits in the worker's AckBatcher for it.

def hold_until_waiting(batcher, count):
    wait_for(lambda: len(batcher._waiting) >= count, what=f"{count} acks waiting behind the one in flight")


def test_worker_acks_jobs_that_finish_together_in_one_request(url, admin, queue, start_worker, monkeypatch):
    count = 6
    singles, together = [], []
    worker = gantry.Worker(url, [queue], concurrency=count, poll_ms=500,
                           handlers={"py.quick": lambda job: job.args, "py.odd": lambda job: {"not JSON"}})
    ack, ack_many = gantry.Client.ack, gantry.Client.ack_many

    def spied_ack(client, id, result=None):
        singles.append(id)
        if len(singles) == 1:
            hold_until_waiting(worker._acks, count - 1)
        return ack(client, id, result)

    def spied_ack_many(client, ids, results=None):
        together.append(ids)
        return ack_many(client, ids, results)

    monkeypatch.setattr(gantry.Client, "ack", spied_ack)
    monkeypatch.setattr(gantry.Client, "ack_many", spied_ack_many)
    ids = admin.enqueue_batch([{"type": "py.quick", "args": {"n": n}, "queue": queue} for n in range(count - 1)])
    odd = admin.enqueue("py.odd", queue=queue)  # its result is not JSON: it alone is nacked
    running = start_worker(worker)

    wait_for(lambda: worker.completed + worker.failed == count, what="every job acked or nacked")
    assert (worker.completed, worker.failed) == (count - 1, 1)
    assert [admin.job(job_id)["result"] for job_id in ids] == [{"n": n} for n in range(count - 1)]
    assert state_of(admin, odd) == "scheduled" and admin.job(odd)["errors"][0]["kind"] == "TypeError"
    # The first ack went alone; the other jobs, once finished, in one ack with ids (but not the odd one).
    assert len(singles) == 1 and len(together) == 1
    assert sorted(together[0]) == sorted(set(ids) - set(singles))
    worker.shutdown()
    running.join(5)


def reply(request, result=None, error=None):
    return [{"jsonrpc": "2.0", "id": request["id"], **({"error": error} if error else {"result": result})}]


def test_worker_acks_one_by_one_on_a_broker_without_ack_ids(fake_broker, start_worker):
    """An older broker refuses ``ids`` (-32602, field ``ids``): the jobs of that ack are acked one by one, and
    every later ack goes alone too."""
    rounds = [["1", "2", "3", "4"], ["5", "6"]]
    to_reserve, acks, held = [], [], set()

    def answer(request):
        method, params = request["method"], request.get("params") or {}
        if method == "reserve":
            given = []
            if 0 < len(to_reserve) <= params["max"]:  # a whole round at once, so its jobs can finish together
                given, to_reserve[:] = to_reserve[:], []
            else:
                time.sleep(0.05)  # a short poll that finds nothing
            return reply(request, {"jobs": [{"id": job_id, "type": "py.quick", "attempt": 1} for job_id in given]})
        if method == "ack":
            acks.append(params)
            if "ids" in params:
                return reply(request, error={"code": -32602, "message": "Invalid params: ids is not a field of "
                                             "this method (fields: id, result).", "data": {"field": "ids"}})
            this_round = next(number for number, ids in enumerate(rounds) if params["id"] in ids)
            if this_round not in held:  # the round's first ack waits until the others wait behind it
                held.add(this_round)
                hold_until_waiting(worker._acks, len(rounds[this_round]) - 1)
            return reply(request, {"ok": True})
        return reply(request, {"leases": [], "lost": []} if method == "extend" else None)

    broker = fake_broker(answer)
    worker = gantry.Worker(broker.url, ["q"], concurrency=4, handlers={"py.quick": lambda job: int(job.id)})
    running = start_worker(worker)
    to_reserve[:] = rounds[0]
    wait_for(lambda: worker.completed == 4, what="the first round")
    first, refused, *one_by_one = acks
    assert first == {"id": first["id"], "result": int(first["id"])}
    assert sorted(refused["ids"]) == sorted(set(rounds[0]) - {first["id"]})
    assert refused["results"] == {job_id: int(job_id) for job_id in refused["ids"]}
    assert sorted(ack["id"] for ack in one_by_one) == sorted(refused["ids"])

    acks.clear()
    to_reserve[:] = rounds[1]
    wait_for(lambda: worker.completed == 6, what="the second round")
    assert sorted(ack["id"] for ack in acks) == rounds[1] and all("ids" not in ack for ack in acks)
    worker.stop()
    running.join(5)


def test_ack_batcher_gives_each_job_its_own_outcome(fake_broker):
    """Each caller hears of its own job: acked (maybe with cancel_requested), or lease_lost when answered in
    ``lost``, as a single ack would have said; a result that is not JSON fails only its own job."""
    from gantry._acks import AckBatcher

    def answer(request):
        params = request["params"]
        if "id" in params:
            hold_until_waiting(batcher, 4)
            return reply(request, {"ok": True})
        assert (sorted(params["ids"]), params["results"]) == (["b", "c", "d"], {"b": "B"})  # e is not JSON
        return reply(request, {"ok": False, "acked": ["b"], "lost": [{"id": "c", "state": "available"}, {"id": "d"}],
                               "cancel_requested_ids": ["b"]})

    batcher = AckBatcher(gantry.Client(fake_broker(answer).url))
    outcomes = {}

    def ack(job_id, result=None):
        try:
            outcomes[job_id] = batcher.ack(job_id, result)
        except Exception as error:
            outcomes[job_id] = error

    threads = [threading.Thread(target=ack, args=("a",))]
    threads[0].start()
    wait_for(lambda: batcher._sending, what="the first ack to be sent")
    for job_id, result in [("b", "B"), ("c", None), ("d", None), ("e", float("nan"))]:
        threads.append(threading.Thread(target=ack, args=(job_id, result)))
        threads[-1].start()
    for thread in threads:
        thread.join(10)
    assert outcomes["a"] == {"ok": True} and outcomes["b"] == {"ok": True, "cancel_requested": True}
    for job_id, data in [("c", {"id": "c", "state": "available"}), ("d", {"id": "d"})]:
        assert isinstance(outcomes[job_id], gantry.RPCError)
        assert (outcomes[job_id].name, outcomes[job_id].data) == ("lease_lost", data)
    assert isinstance(outcomes["e"], ValueError)
