"""Hooks (proto-json/hooks.json): the names, the order they fire in, and what an error raised in one does."""
import asyncio
import datetime
import json
import logging
import pathlib
import threading

import pytest

import gantry
from conftest import wait_for
from gantry.aio import AsyncClient

HOOKS_JSON = pathlib.Path(__file__).resolve().parents[3] / "proto-json" / "hooks.json"


@pytest.mark.no_broker
def test_the_hooks_are_exactly_those_of_proto_json():
    listed = [hook["name"] for hook in json.loads(HOOKS_JSON.read_text())["hooks"]]
    assert list(gantry.HOOKS) == listed  # Python spells them as written, in the same order
    offered = {name for name in dir(gantry.Hooks) if not name.startswith("_")} - {"on", "use", "get"}
    assert offered == set(listed)
    for holder in (gantry.Client("127.0.0.1:1"), AsyncClient("127.0.0.1:1"), gantry.Worker("127.0.0.1:1")):
        for name in listed:
            function = getattr(holder.hooks, name)(lambda *args: None)
            assert holder.hooks.get(name) == (function,)
            assert holder.hooks.on(name)(print) is print
    with pytest.raises(ValueError, match="there is no hook 'before_enqeue'"):
        gantry.Hooks().on("before_enqeue", print)
    with pytest.raises(TypeError):
        gantry.Hooks({"after_job": "not a function"})

    class Tracker:
        def on_job_failure(self, job, error):
            pass

        def on_fatal_error(self, error):
            pass
    tracker = Tracker()
    hooks = gantry.Hooks(tracker)
    assert hooks.get("on_job_failure") == (tracker.on_job_failure,) and hooks.get("on_fatal_error")
    shared = gantry.Hooks()
    assert gantry.Client("127.0.0.1:1", hooks=shared).hooks is shared


def around(events, label):
    def hook(job, next):
        events.append(f"{label} in")
        try:
            return next()
        finally:
            events.append(f"{label} out")
    return hook


def test_enqueue_hooks_wrap_enqueue_batch_and_call_in_order(url, admin, queue):
    events = []

    def tag(job):
        events.append(("before 1", job["type"]))
        job.setdefault("meta", {})["tenant"] = "acme"

    def reprioritise(job):
        events.append(("before 2", job["type"]))
        job["priority"] = 7
        job["run_at"] = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)

    def sent(job, answer):
        events.append(("after", job["type"], answer["id"]))

    client = gantry.Client(url, hooks={"before_enqueue": [tag, reprioritise],
                                       "around_enqueue": [around(events, "around 1"), around(events, "around 2")],
                                       "after_enqueue": sent})
    around_got = []
    client.hooks.around_enqueue(lambda job, next: around_got.append(job) or next())
    meta = {"source": "test"}
    job_id = client.enqueue("py.hooked", {"n": 1}, queue=queue, meta=meta)
    assert events == [("before 1", "py.hooked"), ("before 2", "py.hooked"), "around 1 in", "around 2 in",
                      "around 2 out", "around 1 out", ("after", "py.hooked", job_id)]
    assert around_got[0]["type"] == "py.hooked"
    stored = admin.job(job_id)
    assert (stored["meta"], stored["priority"]) == ({"source": "test", "tenant": "acme"}, 7)
    assert stored["run_at"].startswith("2030-01-02T03:04:05")
    assert meta == {"source": "test"}  # the caller's dict is not changed

    events.clear()
    around_got.clear()
    jobs = [{"type": "py.first", "queue": queue}, {"type": "py.second", "queue": queue}]
    ids = client.enqueue_batch(jobs)
    assert events == [("before 1", "py.first"), ("before 2", "py.first"), ("before 1", "py.second"),
                      ("before 2", "py.second"), "around 1 in", "around 2 in", "around 2 out", "around 1 out",
                      ("after", "py.first", ids[0]), ("after", "py.second", ids[1])]
    assert [job["type"] for job in around_got[0]] == ["py.first", "py.second"]  # a batch: one request, its jobs
    assert [admin.job(id)["meta"] for id in ids] == [{"tenant": "acme"}] * 2
    assert "meta" not in jobs[0]

    events.clear()
    answer = client.call("enqueue", {"type": "py.raw", "queue": queue})
    assert events[0] == ("before 1", "py.raw") and events[-1] == ("after", "py.raw", answer["id"])
    assert admin.job(answer["id"])["meta"] == {"tenant": "acme"}


def test_async_client_awaits_coroutine_hooks(url, admin, queue):
    events = []

    async def before(job):
        await asyncio.sleep(0)
        job["meta"] = {"async": True}

    async def outer(job, next):
        events.append("outer in")
        answer = await next()
        events.append("outer out")
        return answer

    def plain(job, next):  # a plain function may hand back next()'s coroutine
        events.append("plain")
        return next()

    async def after(job, answer):
        events.append(("after", answer["id"]))

    async def main():
        hooks = {"before_enqueue": before, "around_enqueue": [outer, plain], "after_enqueue": after}
        async with AsyncClient(url, hooks=hooks) as client:
            job_id = await client.enqueue("py.async-hooked", queue=queue)
            ids = await client.enqueue_batch([{"type": "py.a", "queue": queue}, {"type": "py.b", "queue": queue}])
            return job_id, ids
    job_id, ids = asyncio.run(main())
    assert events == ["outer in", "plain", "outer out", ("after", job_id),
                      "outer in", "plain", "outer out", ("after", ids[0]), ("after", ids[1])]
    assert [admin.job(id)["meta"] for id in [job_id, *ids]] == [{"async": True}] * 3


def enqueue_broker(fake_broker):
    def answer(request):
        if request["method"] == "enqueue":
            return [{"jsonrpc": "2.0", "id": request["id"], "result": {"id": "7"}}]
        return [{"jsonrpc": "2.0", "id": request["id"], "result": {"ids": ["8", "9"]}}]
    return fake_broker(answer)


def sent_methods(broker):
    return [request["method"] for request in broker.requests if request["method"] != "hello"]


@pytest.mark.no_broker
def test_enqueue_hook_errors_reach_on_fatal_error(fake_broker, caplog):
    broker = enqueue_broker(fake_broker)
    fatal = []
    client = gantry.Client(broker.url, patience=0)
    client.hooks.on_fatal_error(fatal.append)

    # A raising before_enqueue stops the enqueue: nothing is sent, the caller gets its error.
    veto = client.hooks.before_enqueue(lambda job: (_ for _ in ()).throw(ValueError("no tenant")))
    with pytest.raises(ValueError, match="no tenant"):
        client.enqueue("py.vetoed")
    [error] = fatal
    assert isinstance(error, gantry.HookError) and (error.hook, error.function) == ("before_enqueue", veto)
    assert error.job["type"] == "py.vetoed" and isinstance(error.__cause__, ValueError)
    assert "before_enqueue hook" in str(error) and sent_methods(broker) == []

    # An around hook that never calls next() fails the enqueue the same way.
    fatal.clear()
    client = gantry.Client(broker.url, patience=0, hooks={"on_fatal_error": fatal.append})
    client.hooks.around_enqueue(lambda job, next: None)
    with pytest.raises(RuntimeError, match="returned without calling next"):
        client.enqueue("py.skipped")
    assert [error.hook for error in fatal] == ["around_enqueue"] and sent_methods(broker) == []

    # Once the broker stored the job, a hook raising is reported and the enqueue returns the id all the same.
    fatal.clear()
    client = gantry.Client(broker.url, patience=0, hooks={"on_fatal_error": fatal.append})

    def late(job, next):
        next()
        raise KeyError("after the broker answered")
    client.hooks.around_enqueue(late)
    client.hooks.after_enqueue(lambda job, answer: 1 / 0)
    after_too = []
    client.hooks.after_enqueue(lambda job, answer: after_too.append(answer))
    assert client.enqueue("py.stored") == "7"
    assert [error.hook for error in fatal] == ["around_enqueue", "after_enqueue"]
    assert isinstance(fatal[1].__cause__, ZeroDivisionError) and after_too == [{"id": "7"}]
    assert client.enqueue_batch([{"type": "a"}, {"type": "b"}]) == ["8", "9"]
    assert after_too[1:] == [{"id": "8"}, {"id": "9"}]
    assert sent_methods(broker) == ["enqueue", "enqueue_batch"]

    # An error inside on_fatal_error is logged; with no on_fatal_error hook at all, the hook's error is.
    caplog.set_level(logging.ERROR, logger="gantry.hooks")
    client = gantry.Client(broker.url, patience=0)
    client.hooks.after_enqueue(lambda job, answer: 1 / 0)
    assert client.enqueue("py.logged") == "7"
    assert "the after_enqueue hook" in caplog.text and "ZeroDivisionError" in caplog.text
    caplog.clear()
    client.hooks.on_fatal_error(lambda error: {}["broken tracker"])
    assert client.enqueue("py.logged") == "7"
    assert "the on_fatal_error hook" in caplog.text and "broken tracker" in caplog.text

    # A coroutine function is no hook for the synchronous client: reported, as its own error.
    fatal.clear()
    client = gantry.Client(broker.url, patience=0, hooks={"on_fatal_error": fatal.append})

    async def coroutine_hook(job, answer):
        pass
    client.hooks.after_enqueue(coroutine_hook)
    assert client.enqueue("py.async-hook") == "7"
    assert "coroutine function" in str(fatal[0].__cause__)


@pytest.mark.no_broker
def test_async_enqueue_hook_errors(fake_broker):
    broker = enqueue_broker(fake_broker)
    fatal = []

    async def report(error):
        fatal.append(error)

    async def veto(job):
        if job["type"] == "py.vetoed":
            raise ValueError("vetoed")

    async def late(job, next):
        answer = await next()
        if isinstance(job, list):
            raise KeyError("after the batch was stored")
        return answer

    async def main():
        hooks = {"on_fatal_error": report, "before_enqueue": veto, "around_enqueue": late}
        async with AsyncClient(broker.url, patience=0, hooks=hooks) as client:
            with pytest.raises(ValueError, match="vetoed"):
                await client.enqueue("py.vetoed")
            assert await client.enqueue("py.fine") == "7"
            assert await client.enqueue_batch([{"type": "a"}, {"type": "b"}]) == ["8", "9"]
            client.hooks.around_enqueue(lambda job, next: "no next")
            with pytest.raises(RuntimeError, match="without calling next"):
                await client.enqueue("py.skipped")
    asyncio.run(main())
    assert [(error.hook, type(error.__cause__).__name__) for error in fatal] == [
        ("before_enqueue", "ValueError"), ("around_enqueue", "KeyError"), ("around_enqueue", "RuntimeError")]
    assert sent_methods(broker) == ["enqueue", "enqueue_batch"]


def test_worker_hooks_fire_in_order(url, admin, queue, start_worker):
    events, lock = [], threading.Lock()

    def record(*event):
        with lock:
            events.append(event)

    ok = admin.enqueue("py.ok", {"n": 2}, queue=queue)
    failing = admin.enqueue("py.fail", queue=queue, max_attempts=3)
    states_at_failure = []
    hooks = gantry.Hooks()
    hooks.before_startup(lambda w: record("before_startup", w.client is None))
    hooks.after_startup(lambda w: record("after_startup", w.client.session_id is not None))
    hooks.before_job(lambda job: record("before_job", job.type))
    hooks.around_job(lambda job, next: record("around 1", job.type) or next())

    @hooks.around_job
    def forgets_to_return(job, next):  # the job's result is kept all the same
        record("around 2", job.type)
        next()
    hooks.after_job(lambda job, outcome: record("after_job", job.type, outcome.ok, outcome.result,
                                                type(outcome.error).__name__))

    @hooks.on_job_failure
    def failed(job, error):
        states_at_failure.append(admin.job(job.id)["state"])  # before the nack
        record("on_job_failure", job.type, error)

    hooks.before_shutdown(lambda w: record("before_shutdown", len(w.running_jobs)))
    hooks.after_shutdown(lambda w: record("after_shutdown", w.completed, w.failed))

    def fail(job):
        record("handler", job.type)
        raise ValueError("bad input")

    worker = gantry.Worker(url, [queue], concurrency=1, poll_ms=300, hooks=hooks,
                           handlers={"py.ok": lambda job: record("handler", job.type) or job.args["n"] * 2,
                                     "py.fail": fail})
    running = start_worker(worker)
    wait_for(lambda: admin.job(failing)["state"] == "scheduled", what="the failing job to be nacked")
    worker.shutdown()
    running.join(5)
    [failure] = [event for event in events if event[0] == "on_job_failure"]
    assert isinstance(failure[2], ValueError) and str(failure[2]) == "bad input"
    assert events == [
        ("before_startup", True), ("after_startup", True),
        ("before_job", "py.ok"), ("around 1", "py.ok"), ("around 2", "py.ok"), ("handler", "py.ok"),
        ("after_job", "py.ok", True, 4, "NoneType"),
        ("before_job", "py.fail"), ("around 1", "py.fail"), ("around 2", "py.fail"), ("handler", "py.fail"),
        ("after_job", "py.fail", False, None, "ValueError"), ("on_job_failure", "py.fail", failure[2]),
        ("before_shutdown", 0), ("after_shutdown", 1, 1)]
    assert states_at_failure == ["reserved"]
    assert admin.job(ok)["result"] == 4 and admin.job(failing)["errors"][0]["message"] == "bad input"


def test_worker_hook_errors(url, admin, queue, start_worker, caplog):
    caplog.set_level(logging.ERROR, logger="gantry.hooks")
    fatal, failures, ran = [], [], []
    hooks = gantry.Hooks()
    hooks.on_fatal_error(fatal.append)
    hooks.on_fatal_error(lambda error: {}["the tracker is down"])  # logged; the worker goes on

    @hooks.before_job
    def veto(job):
        if job.type == "py.veto":
            raise ValueError("vetoed by a hook")

    @hooks.around_job
    def wrap(job, next):
        if job.type == "py.skip":
            return "skipped"  # never calls next()
        result = next()
        if job.type == "py.around-boom":
            raise LookupError("raised after the handler")
        return result

    @hooks.after_job
    def after(job, outcome):
        if job.type == "py.after-boom":
            raise OSError("after_job cannot change the outcome")

    hooks.on_job_failure(lambda job, error: failures.append((job.type, type(error).__name__)))
    ids = {type: admin.enqueue(type, queue=queue, max_attempts=1)
           for type in ("py.veto", "py.skip", "py.around-boom", "py.after-boom")}
    worker = gantry.Worker(url, [queue], concurrency=1, poll_ms=300, hooks=hooks,
                           handlers={type: lambda job: ran.append(job.type) or "done" for type in ids})
    running = start_worker(worker)
    wait_for(lambda: {admin.job(id)["state"] for id in ids.values()} <= {"dead", "completed"}, what="every job")
    worker.shutdown()
    running.join(5)

    states = {type: admin.job(id)["state"] for type, id in ids.items()}
    assert states == {"py.veto": "dead", "py.skip": "dead", "py.around-boom": "dead", "py.after-boom": "completed"}
    assert admin.job(ids["py.veto"])["errors"][0]["kind"] == "ValueError"
    assert admin.job(ids["py.around-boom"])["errors"][0]["message"] == "raised after the handler"
    assert ran == ["py.around-boom", "py.after-boom"]  # neither vetoed nor skipped handlers ran
    assert failures == [("py.veto", "ValueError"), ("py.skip", "RuntimeError"), ("py.around-boom", "LookupError")]
    assert [(error.hook, error.job.type, type(error.__cause__).__name__) for error in fatal] == [
        ("before_job", "py.veto", "ValueError"), ("around_job", "py.skip", "RuntimeError"),
        ("around_job", "py.around-boom", "LookupError"), ("after_job", "py.after-boom", "OSError")]
    logged = [record for record in caplog.records if "the on_fatal_error hook" in record.getMessage()]
    assert len(logged) == 4 and all("the tracker is down" in str(record.exc_info[1]) for record in logged)


@pytest.mark.no_broker
def test_worker_fatal_errors_and_a_raising_before_startup(fake_broker, start_worker):
    def answer(request):
        if request["method"] == "reserve":
            return [{"jsonrpc": "2.0", "id": request["id"], "error": {
                "code": -32009, "message": "this token may not reserve from q", "data": {"queue": "q"}}}]
        return [{"jsonrpc": "2.0", "id": request["id"], "result": {"leases": [], "lost": []}}]

    broker = fake_broker(answer)
    events = []
    hooks = {"on_fatal_error": lambda error: events.append(("fatal", error)),
             "before_shutdown": lambda worker: events.append("before_shutdown"),
             "after_shutdown": lambda worker: events.append("after_shutdown")}
    worker = gantry.Worker(broker.url, ["q"], hooks=hooks)
    running = start_worker(worker)
    with pytest.raises(gantry.RPCError) as caught:
        running.join(5)
    assert events == [("fatal", caught.value), "before_shutdown", "after_shutdown"]
    assert caught.value.name == "forbidden"

    # A raising before_startup keeps the worker from starting: reported, and run() raises it.
    broker.requests.clear()
    events.clear()
    worker = gantry.Worker(broker.url, ["q"], hooks=hooks)
    worker.hooks.before_startup(lambda worker: {}["no database"])
    with pytest.raises(KeyError):
        worker.run()
    [(_, error)] = events
    assert error.hook == "before_startup" and isinstance(error.__cause__, KeyError)
    assert broker.requests == []  # it never connected
