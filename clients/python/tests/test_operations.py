"""Operations: steps started by operations_start, worked by gantry.Worker handlers that read ``job.operation`` and
return ``gantry.StepResult`` (globals to set, a branch to jump to); get, list, retry and cancel."""
import asyncio
import collections
import threading

import pytest

import gantry
from conftest import wait_for
from gantry.aio import AsyncClient


def state_of(admin, operation_id):
    return admin.operations_get(operation_id)["state"]


def worker_for(url, queue, handlers, concurrency=4):
    return gantry.Worker(url, [queue], concurrency=concurrency, poll_ms=500, handlers=handlers)


class Calls:
    """Counts handler calls per job type and keeps the operation each call saw."""

    def __init__(self):
        self.count = collections.Counter()
        self.seen = collections.defaultdict(list)
        self.lock = threading.Lock()

    def record(self, job):
        with self.lock:
            self.count[job.type] += 1
            self.seen[job.type].append(job.operation)


def test_start_and_reserve_carry_the_operation(admin, queue):
    name = "signup-" + queue
    started = admin.operations_start(name, {"main": ["signup.charge", "signup.mail"]}, {"user_id": 7}, queue=queue)
    assert started["state"] == "running" and started["created"] is True

    plain = admin.enqueue("signup.other", queue=queue + "-plain")
    [step] = admin.reserve(queue)
    assert step["type"] == "signup.charge"
    assert step["operation"] == {"id": started["id"], "name": name, "branch": "main", "step": "signup.charge",
                                 "index": 0, "globals": {"user_id": 7}}
    assert gantry.Job(step).operation == step["operation"]
    [other] = admin.reserve(queue + "-plain")
    assert other["id"] == plain and "operation" not in other and gantry.Job(other).operation is None
    admin.ack(plain)

    assert admin.ack(step["id"], {"charged": 12}, set={"charge_id": "ch_1"}) == {"ok": True}
    [mail] = admin.reserve(queue)
    assert mail["operation"]["step"] == "signup.mail" and mail["operation"]["index"] == 1
    assert mail["operation"]["globals"] == {"user_id": 7, "charge_id": "ch_1"}

    operation = admin.operations_get(started["id"])
    assert (operation["name"], operation["state"], operation["queue"], operation["branch"], operation["index"]) == (
        name, "running", queue, "main", 1)
    assert [(s["type"], s["state"]) for s in operation["steps"]] == [("signup.charge", "completed"),
                                                                     ("signup.mail", "running")]
    assert admin.job(step["id"])["result"] == {"charged": 12}
    [listed] = admin.operations_list(name=name)["operations"]
    assert listed["id"] == started["id"] and "steps" not in listed
    assert admin.operations_list(name=name, globals={"charge_id": "ch_1"})["operations"] == [listed]
    assert admin.operations_list(name=name, globals={"charge_id": "ch_2"})["operations"] == []
    assert admin.operations_list(name=name, state="completed")["operations"] == []
    with pytest.raises(gantry.RPCError) as caught:
        admin.operations_get("999999999")
    assert caught.value.name == "not_found"


def test_start_with_a_key_is_idempotent(admin, queue):
    name = "import-" + queue
    first = admin.operations_start(name, {"main": ["import.fetch"]}, queue=queue, key="file-42")
    again = admin.operations_start(name, {"main": ["import.fetch", "import.other"]}, queue=queue, key="file-42")
    assert first["created"] is True
    assert again == {"id": first["id"], "state": "running", "created": False}
    other = admin.operations_start(name, {"main": ["import.fetch"]}, queue=queue, key="file-43")
    assert other["created"] is True and other["id"] != first["id"]
    assert admin.operations_get(first["id"])["key"] == "file-42"
    assert len(admin.reserve(queue, max=10)) == 2  # one step per operation: the repeated start enqueued none


def test_steps_share_globals(url, admin, queue, start_worker):
    calls = Calls()

    def first(job):
        calls.record(job)
        return gantry.StepResult(set={"greeting": "hello"}, result="first")

    def second(job):
        calls.record(job)
        return {"plain": True}  # a plain result: the globals stay as they are

    def third(job):
        calls.record(job)
        return gantry.StepResult(result=job.operation["globals"]["greeting"] + ", world")

    started = admin.operations_start("greet-" + queue, {"main": ["greet.one", "greet.two", "greet.three"]},
                                     {"n": 1}, queue=queue)
    running = start_worker(worker_for(url, queue, {"greet.one": first, "greet.two": second, "greet.three": third}))
    wait_for(lambda: state_of(admin, started["id"]) == "completed", what="the operation to complete")

    assert [seen[0]["globals"] for seen in (calls.seen["greet.one"], calls.seen["greet.three"])] == [
        {"n": 1}, {"n": 1, "greeting": "hello"}]
    operation = admin.operations_get(started["id"])
    assert operation["globals"] == {"n": 1, "greeting": "hello"} and operation["path"] == ["main"]
    assert [admin.job(s["job_id"])["result"] for s in operation["steps"]] == ["first", {"plain": True},
                                                                             "hello, world"]
    assert calls.count == {"greet.one": 1, "greet.two": 1, "greet.three": 1}
    running.worker.shutdown()
    running.join(5)


def test_jump_to_a_branch_and_back_to_main(url, admin, queue, start_worker):
    calls = Calls()

    def check(job):
        calls.record(job)
        return gantry.StepResult(set={"stock": 0}, jump_to="backorder")

    def backorder(job):
        calls.record(job)
        return gantry.StepResult(set={"backordered": True}, jump_to={"branch": "main", "step": "order.ship"})

    def record(job):
        calls.record(job)

    branches = {"main": ["order.check", "order.pick", "order.ship"], "backorder": ["order.backorder"]}
    started = admin.operations_start("order-" + queue, branches, queue=queue)
    running = start_worker(worker_for(url, queue, {"order.check": check, "order.backorder": backorder,
                                                   "order.pick": record, "order.ship": record}))
    wait_for(lambda: state_of(admin, started["id"]) == "completed", what="the operation to complete")

    assert calls.count == {"order.check": 1, "order.backorder": 1, "order.ship": 1}  # order.pick jumped over
    [ship] = calls.seen["order.ship"]
    assert (ship["branch"], ship["index"], ship["globals"]) == ("main", 2, {"stock": 0, "backordered": True})
    operation = admin.operations_get(started["id"])
    assert operation["path"] == ["main", "backorder", "main"]
    assert [(s["branch"], s["type"]) for s in operation["steps"]] == [
        ("main", "order.check"), ("backorder", "order.backorder"), ("main", "order.ship")]
    running.worker.shutdown()
    running.join(5)


def test_a_parallel_group_runs_at_once_then_its_join(url, admin, queue, start_worker):
    calls = Calls()
    together = threading.Barrier(3, timeout=10)  # each member waits for the other two: they run at once

    def member(job):
        calls.record(job)
        together.wait()
        return gantry.StepResult(set={job.type: True}, result=job.type)

    def join(job):
        calls.record(job)

    branches = {"main": [{"parallel": ["fan.a", "fan.b", {"type": "fan.c", "queue": queue + "-c"}]}, "fan.join"]}
    started = admin.operations_start("fan-" + queue, branches, queue=queue)
    handlers = {"fan.a": member, "fan.b": member, "fan.c": member, "fan.join": join}
    worker = gantry.Worker(url, [queue, queue + "-c"], concurrency=4, poll_ms=500, handlers=handlers)
    running = start_worker(worker)
    wait_for(lambda: state_of(admin, started["id"]) == "completed", what="the operation to complete")

    # Three sets that finished together were acked one by one (the broker refuses set in an ack with ids).
    [joined] = calls.seen["fan.join"]
    assert joined["globals"] == {"fan.a": True, "fan.b": True, "fan.c": True} and joined["index"] == 1
    assert {seen["index"] for t in ("fan.a", "fan.b", "fan.c") for seen in calls.seen[t]} == {0}
    operation = admin.operations_get(started["id"])
    members = [s for s in operation["steps"] if s["index"] == 0]
    assert sorted((s["member"], s["type"], s["state"]) for s in members) == [
        (0, "fan.a", "completed"), (1, "fan.b", "completed"), (2, "fan.c", "completed")]
    assert (worker.completed, worker.failed) == (4, 0)
    running.worker.shutdown()
    running.join(5)


def test_a_failed_step_then_retry_runs_only_what_did_not_complete(url, admin, queue, start_worker):
    calls = Calls()
    broken = threading.Event()
    broken.set()

    def first(job):
        calls.record(job)
        return gantry.StepResult(set={"first_runs": calls.count["pay.one"]})

    def second(job):
        calls.record(job)
        if broken.is_set():
            raise ValueError("the card was declined")

    def third(job):
        calls.record(job)

    branches = {"main": ["pay.one", {"type": "pay.two", "max_attempts": 1}, "pay.three"]}
    started = admin.operations_start("pay-" + queue, branches, queue=queue)
    running = start_worker(worker_for(url, queue, {"pay.one": first, "pay.two": second, "pay.three": third}))
    wait_for(lambda: state_of(admin, started["id"]) == "failed", what="the operation to fail")

    operation = admin.operations_get(started["id"])
    assert (operation["branch"], operation["index"]) == ("main", 1)
    error = operation["error"]
    assert (error["branch"], error["index"], error["type"], error["message"]) == (
        "main", 1, "pay.two", "the card was declined")
    assert [(s["type"], s["state"]) for s in operation["steps"]] == [
        ("pay.one", "completed"), ("pay.two", "failed"), ("pay.three", "unprocessed")]
    assert admin.job(error["job_id"])["state"] == "dead"

    broken.clear()
    retried = admin.operations_retry(started["id"])
    assert retried["state"] == "running" and len(retried["job_ids"]) == 1
    wait_for(lambda: state_of(admin, started["id"]) == "completed", what="the retried operation to complete")
    assert calls.count == {"pay.one": 1, "pay.two": 2, "pay.three": 1}  # pay.one was not run again
    operation = admin.operations_get(started["id"])
    assert operation["globals"] == {"first_runs": 1} and "error" not in operation
    assert [(s["type"], s["state"], s.get("retried")) for s in operation["steps"]] == [
        ("pay.one", "completed", None), ("pay.two", "failed", True), ("pay.two", "completed", None),
        ("pay.three", "completed", None)]

    with pytest.raises(gantry.RPCError) as caught:
        admin.operations_retry(started["id"])  # from the failed step: there is none any more
    assert caught.value.name == "wrong_state"
    admin.operations_retry(started["id"], from_="start")
    wait_for(lambda: calls.count["pay.three"] == 2 and state_of(admin, started["id"]) == "completed",
             what="the operation run again from the start")
    assert calls.count == {"pay.one": 2, "pay.two": 3, "pay.three": 2}
    assert admin.operations_get(started["id"])["globals"] == {"first_runs": 2}
    running.worker.shutdown()
    running.join(5)


def test_set_and_jump_to_only_on_a_step(admin, queue):
    plain = admin.enqueue("plain.job", queue=queue)
    [job] = admin.reserve(queue)
    for outcome, field in (({"set": {"a": 1}}, "set"), ({"jump_to": "main"}, "jump_to")):
        with pytest.raises(gantry.RPCError) as caught:
            admin.ack(plain, **outcome)
        assert (caught.value.code, caught.value.name, caught.value.field) == (-32602, "invalid_params", field)
    assert admin.ack(job["id"]) == {"ok": True}  # the refused acks left it held

    admin.operations_start("steer-" + queue, {"main": ["steer.one", "steer.two"]}, queue=queue)
    [step] = admin.reserve(queue)
    for jump_to, field in (("nowhere", "jump_to"), ({"branch": "main", "step": "steer.nine"}, "jump_to.step"),
                           ({"branch": "side", "step": "steer.one"}, "jump_to.branch")):
        with pytest.raises(gantry.RPCError) as caught:
            admin.ack(step["id"], jump_to=jump_to)
        assert (caught.value.code, caught.value.field) == (-32602, field)
    with pytest.raises(gantry.RPCError) as caught:
        admin.call("ack", {"ids": [step["id"]], "set": {"a": 1}})
    assert (caught.value.code, caught.value.field) == (-32602, "set")
    assert admin.ack(step["id"], set={"a": 1}) == {"ok": True}


def test_a_worker_fails_a_step_result_the_broker_refuses(url, admin, queue, start_worker):
    plain = admin.enqueue("plain.job", queue=queue, max_attempts=1)
    running = start_worker(worker_for(url, queue, {"plain.job": lambda job: gantry.StepResult(set={"a": 1})}))
    wait_for(lambda: admin.job(plain)["state"] == "dead", what="the job to be nacked")
    [error] = admin.job(plain)["errors"]
    assert error["kind"] == "RPCError" and "not a step of an operation" in error["message"]
    assert (running.worker.completed, running.worker.failed) == (0, 1)
    running.worker.shutdown()
    running.join(5)


def test_cancel_an_operation(url, admin, queue, start_worker):
    waiting = admin.operations_start("cancel-" + queue, {"main": ["cancel.one", "cancel.two"]}, queue=queue)
    answer = admin.operations_cancel(waiting["id"])
    assert answer == {"id": waiting["id"], "state": "cancelled", "cancelled": 1, "stopping": 0}
    operation = admin.operations_get(waiting["id"])
    assert operation["state"] == "cancelled"
    assert admin.job(operation["steps"][0]["job_id"])["state"] == "cancelled"
    with pytest.raises(gantry.RPCError) as caught:
        admin.operations_cancel(waiting["id"])
    assert caught.value.name == "wrong_state"

    reserved, seen = threading.Event(), {}

    def slow(job):
        reserved.set()
        job.interrupted.wait(10)
        seen["cancel_requested"] = job.cancel_requested
        raise RuntimeError("stopped: the operation was cancelled")

    started = admin.operations_start("cancel-running-" + queue, {"main": ["cancel.slow", "cancel.after"]},
                                     queue=queue)
    worker = gantry.Worker(url, [queue], lease_ms=1500, poll_ms=500, handlers={"cancel.slow": slow})
    running = start_worker(worker)
    assert reserved.wait(5)
    answer = admin.operations_cancel(started["id"])
    assert (answer["state"], answer["cancelled"], answer["stopping"]) == ("cancelled", 0, 1)
    wait_for(lambda: seen, what="the handler to hear of the cancel")
    assert seen == {"cancel_requested": True}
    assert state_of(admin, started["id"]) == "cancelled"
    running.worker.shutdown()
    running.join(5)


def test_operations_from_the_asyncio_client(url, queue):
    async def main():
        async with AsyncClient(url, name="pytest-async-operations") as client:
            started = await client.operations_start("async-" + queue, {"main": ["async.one", "async.two"]},
                                                    {"n": 1}, queue=queue, key="k")
            assert (await client.operations_start("async-" + queue, {"main": ["async.one"]}, queue=queue,
                                                  key="k"))["created"] is False
            [step] = await client.reserve(queue)
            assert step["operation"]["globals"] == {"n": 1}
            await client.ack(step["id"], set={"n": 2}, jump_to={"branch": "main", "step": "async.two"})
            assert (await client.operations_get(started["id"]))["globals"] == {"n": 2}
            listed = await client.operations_list(name="async-" + queue, state="running", limit=5)
            assert [operation["id"] for operation in listed["operations"]] == [started["id"]]
            assert (await client.operations_cancel(started["id"]))["state"] == "cancelled"
            assert (await client.operations_retry(started["id"]))["state"] == "running"
    asyncio.run(main())
