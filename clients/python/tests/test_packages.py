"""Packages: packages_upsert, a run by hand with a config override, each step's reserved job carrying the package
and its config beside the operation, packages_executions with the steps' states and results, executions_save and
executions_saved, refusals, a gantry.Worker handler reading ``job.package``, event triggers and the asyncio client.

Packages (and event types, which a package's ``triggers.events`` match) are global to the broker: every test names
them after its own queue and deletes its packages at the end."""
import asyncio

import pytest

import gantry
from conftest import wait_for
from gantry.aio import AsyncClient


@pytest.fixture
def package(admin):
    """``package(name, steps, **options)``: packages_upsert, deleted at the end of the test."""
    names = []

    def upsert(name, steps, **options):
        answer = admin.packages_upsert(name, steps, **options)
        if name not in names:
            names.append(name)
        return answer
    yield upsert
    for name in names:
        try:
            admin.packages_delete(name)
        except gantry.RPCError as error:  # already deleted by the test
            assert error.name == "not_found"


def execution_of(admin, name, execution_id):
    return next((e for e in admin.packages_executions(name)["executions"] if e["id"] == execution_id), None)


def test_run_reserve_ack_executions_save_and_delete(admin, queue, package):
    name = "report-" + queue
    upserted = package(name, [queue + ".fetch", queue + ".mail"], description="the nightly report",
                       config={"region": "eu"}, queue=queue)
    assert upserted["created"] is True
    created = upserted["package"]
    assert (created["name"], created["description"], created["config"], created["queue"], created["active"],
            created["source"]) == (name, "the nightly report", {"region": "eu"}, queue, True, "rpc")
    assert created["triggers"]["manual"] is True
    assert [(step["type"], step["queue"]) for step in created["steps"]] == [(queue + ".fetch", queue),
                                                                         (queue + ".mail", queue)]
    assert admin.packages_get(name) == created
    assert name in [p["name"] for p in admin.packages_list()]

    run = admin.packages_run(name, {"region": "us"})
    assert (run["package"], run["state"]) == (name, "running")

    [fetch] = admin.reserve(queue)
    assert fetch["type"] == queue + ".fetch"
    assert fetch["package"] == {"name": name, "config": {"region": "us"}}
    assert fetch["package"]["config"]["region"] == "us"
    operation = fetch["operation"]
    assert (operation["id"], operation["name"], operation["branch"], operation["step"], operation["index"]) == (
        run["id"], name, "main", queue + ".fetch", 0)
    job = gantry.Job(fetch)
    assert job.package["config"] == {"region": "us"} and job.operation["id"] == run["id"]
    assert admin.ack(fetch["id"], {"rows": 3}) == {"ok": True}

    [mail] = admin.reserve(queue)
    assert mail["type"] == queue + ".mail" and mail["operation"]["index"] == 1
    assert mail["package"] == {"name": name, "config": {"region": "us"}}
    admin.ack(mail["id"])

    execution = execution_of(admin, name, run["id"])
    assert (execution["package"], execution["state"], execution["trigger"], execution["config"]) == (
        name, "completed", "manual", {"region": "us"})
    assert [(s["index"], s["type"], s["state"], s["job_id"]) for s in execution["steps"]] == [
        (0, queue + ".fetch", "completed", fetch["id"]), (1, queue + ".mail", "completed", mail["id"])]
    assert execution["steps"][0]["result"] == {"rows": 3} and "result" not in execution["steps"][1]
    assert admin.operations_get(run["id"])["state"] == "completed"  # an execution is an operation

    saved = admin.executions_save(run["id"], "baseline", description="the first good run")
    assert saved["id"] == run["id"] and saved["steps"] == execution["steps"]
    assert (saved["saved"]["name"], saved["saved"]["description"]) == ("baseline", "the first good run")
    [found] = admin.executions_saved(name)
    assert found["id"] == run["id"] and found["saved"]["name"] == "baseline"
    assert run["id"] in [e["id"] for e in admin.executions_saved()]

    with pytest.raises(gantry.RPCError) as caught:
        admin.packages_run(name, {"regoin": "us"})
    assert (caught.value.code, caught.value.name, caught.value.field) == (-32602, "invalid_params", "config.regoin")
    assert "regoin" in caught.value.message

    assert admin.packages_delete(name) == {"deleted": True}
    assert name not in [p["name"] for p in admin.packages_list()]
    for method in (admin.packages_get, admin.packages_run, admin.packages_delete):
        with pytest.raises(gantry.RPCError) as caught:
            method(name)
        assert caught.value.name == "not_found"
    [kept] = admin.executions_saved(name)  # a saved execution outlives its package
    assert kept["id"] == run["id"]


def test_a_worker_handler_reads_the_package_config(url, admin, queue, package, start_worker):
    name = "greet-" + queue
    package(name, ["greet.compose", "greet.send"], config={"region": "eu", "greeting": "hello"}, queue=queue)
    seen = []

    def compose(job):
        seen.append(job.package)
        config = job.package["config"]
        return gantry.StepResult(set={"text": f"{config['greeting']} from {config['region']}"},
                                 result={"region": config["region"]})

    def send(job):
        seen.append(job.package)
        return {"sent": job.operation["globals"]["text"]}

    worker = gantry.Worker(url, [queue], concurrency=2, poll_ms=500,
                           handlers={"greet.compose": compose, "greet.send": send})
    running = start_worker(worker)
    default = admin.packages_run(name)
    overridden = admin.packages_run(name, {"region": "us"})
    for run in (default, overridden):
        wait_for(lambda: execution_of(admin, name, run["id"])["state"] == "completed",
                 what=f"execution {run['id']} to complete")

    results = {run["id"]: [s["result"] for s in execution_of(admin, name, run["id"])["steps"]]
               for run in (default, overridden)}
    assert results == {default["id"]: [{"region": "eu"}, {"sent": "hello from eu"}],
                       overridden["id"]: [{"region": "us"}, {"sent": "hello from us"}]}
    assert len(seen) == 4 and {p["name"] for p in seen} == {name}
    assert (worker.completed, worker.failed) == (4, 0)

    plain = admin.enqueue("greet.compose", queue=queue + "-plain")  # no package: job.package is None
    [other] = admin.reserve(queue + "-plain")
    assert other["id"] == plain and "package" not in other and gantry.Job(other).package is None
    running.worker.shutdown()
    running.join(5)


def test_events_start_executions(admin, queue, package):
    name = "audit-" + queue
    event_type = queue + ".audit.requested"
    package(name, [queue + ".audit"], config={"depth": 1}, queue=queue, triggers={"events": [queue + ".audit.*"]})
    subscription = f"audit-deep-{queue}"
    admin.subscriptions_upsert(subscription, queue + ".deep", {"package": name, "config": {"depth": 9}})
    try:
        published = admin.events_publish(event_type, {"by": "ops"})
        [triggered] = published["triggered"]
        assert triggered["package"] == name and "subscription" not in triggered
        [step] = admin.reserve(queue)
        assert step["operation"]["id"] == triggered["operation_id"]
        assert step["operation"]["globals"]["event"] == {"id": published["id"], "type": event_type,
                                                         "payload": {"by": "ops"}}
        assert step["package"] == {"name": name, "config": {"depth": 1}}
        admin.ack(step["id"])

        deep = admin.events_publish(queue + ".deep", {})
        [through] = deep["triggered"]
        assert through == {"subscription": subscription, "package": name, "operation_id": through["operation_id"]}
        [step] = admin.reserve(queue)
        assert step["package"]["config"] == {"depth": 9}
        admin.ack(step["id"])
        assert {e["trigger"] for e in admin.packages_executions(name)["executions"]} == {"event"}

        with pytest.raises(gantry.RPCError) as caught:
            admin.packages_delete(name)  # a subscription still targets it
        assert caught.value.name == "wrong_state"
        with pytest.raises(gantry.RPCError) as caught:
            admin.subscriptions_upsert(subscription, queue + ".deep", {"package": name, "config": {"colour": 1}})
        assert (caught.value.code, caught.value.field) == (-32602, "target.config.colour")

        admin.packages_upsert(name, [queue + ".audit"], config={"depth": 1}, queue=queue, active=False)
        [skipped] = admin.events_publish(queue + ".deep", {})["triggered"]
        assert (skipped["subscription"], skipped["package"]) == (subscription, name) and skipped["skipped"]
        assert "operation_id" not in skipped and admin.reserve(queue) == []  # an inactive package starts nothing
    finally:
        admin.subscriptions_delete(subscription)


def test_refusals_and_paging(admin, queue, package):
    name = "paged-" + queue
    with pytest.raises(gantry.RPCError) as caught:
        admin.packages_upsert(name, [queue + ".x"], config=["region"])
    assert (caught.value.code, caught.value.field) == (-32602, "config")
    with pytest.raises(gantry.RPCError) as caught:
        admin.packages_upsert(name, [])
    assert (caught.value.code, caught.value.field) == (-32602, "steps")
    with pytest.raises(gantry.RPCError) as caught:
        admin.packages_upsert(name, [queue + ".x"], triggers={"cron": "not a schedule"})
    assert (caught.value.code, caught.value.field) == (-32602, "triggers.cron")
    with pytest.raises(gantry.RPCError) as caught:
        admin.packages_get(name)
    assert caught.value.name == "not_found"

    package(name, [queue + ".x"], config={"n": 1}, queue=queue)
    again = package(name, [queue + ".x"], config={"n": 2}, queue=queue, active=False)
    assert again["created"] is False and again["package"]["active"] is False
    with pytest.raises(gantry.RPCError) as caught:
        admin.packages_run(name)
    assert caught.value.name == "wrong_state"

    package(name, [queue + ".x"], config={"n": 2}, queue=queue)
    ids = [admin.packages_run(name, {"n": n})["id"] for n in (3, 4, 5)]
    first = admin.packages_executions(name, limit=2)
    assert [e["id"] for e in first["executions"]] == ids[:0:-1] and first["next_cursor"]  # newest first
    second = admin.packages_executions(name, limit=2, cursor=first["next_cursor"])
    assert [e["id"] for e in second["executions"]] == ids[:1]
    assert [e["config"] for e in first["executions"] + second["executions"]] == [{"n": 5}, {"n": 4}, {"n": 3}]
    with pytest.raises(gantry.RPCError) as caught:
        admin.executions_save("999999999", "nothing")
    assert caught.value.name == "not_found"


def test_packages_from_the_asyncio_client(url, queue):
    name = "async-" + queue

    async def main():
        async with AsyncClient(url, name="pytest-async-packages") as client:
            created = await client.packages_upsert(name, [queue + ".one", queue + ".two"], config={"region": "eu"},
                                                   queue=queue)
            try:
                assert created["created"] is True
                assert (await client.packages_get(name))["config"] == {"region": "eu"}
                assert name in [p["name"] for p in await client.packages_list()]
                run = await client.packages_run(name, {"region": "us"})
                for step_type in (queue + ".one", queue + ".two"):
                    [step] = await client.reserve(queue)
                    assert step["type"] == step_type and step["package"]["config"] == {"region": "us"}
                    await client.ack(step["id"], {"done": step_type})
                [execution] = (await client.packages_executions(name, limit=5))["executions"]
                assert execution["id"] == run["id"] and execution["state"] == "completed"
                assert [s["result"] for s in execution["steps"]] == [{"done": queue + ".one"},
                                                                     {"done": queue + ".two"}]
                assert (await client.executions_save(run["id"], "kept"))["saved"]["name"] == "kept"
                assert [e["id"] for e in await client.executions_saved(name)] == [run["id"]]
                with pytest.raises(gantry.RPCError) as caught:
                    await client.packages_run(name, {"colour": "red"})
                assert (caught.value.code, caught.value.field) == (-32602, "config.colour")
            finally:
                assert await client.packages_delete(name) == {"deleted": True}
    asyncio.run(main())
