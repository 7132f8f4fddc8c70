"""Events and subscriptions: events_publish fans out to every matching subscription (a job whose args are the
payload, an operation whose globals carry the event), filters, wildcards, dedupe by key, pause/resume, replay,
events_get with the triggers' states, refusals, and the asyncio client.

Subscriptions are global to the broker: every test names its subscriptions and event types with a random suffix
and deletes its subscriptions at the end, so no other test's events start anything through them."""
import asyncio
import datetime
import secrets

import pytest

import gantry
from gantry.aio import AsyncClient


@pytest.fixture
def tag():
    """A suffix no other test uses, for subscription names and event types."""
    return secrets.token_hex(6)


@pytest.fixture
def subscribe(admin):
    """``subscribe(name, event, target, filter=None)``: subscriptions_upsert, deleted at the end of the test."""
    names = []

    def upsert(name, event, target, filter=None):
        answer = admin.subscriptions_upsert(name, event, target, filter=filter)
        if name not in names:
            names.append(name)
        return answer
    yield upsert
    for name in names:
        try:
            admin.subscriptions_delete(name)
        except gantry.RPCError as error:  # already deleted by the test
            assert error.name == "not_found"


def by_subscription(triggered):
    return {trigger["subscription"]: trigger for trigger in triggered}


def test_publish_starts_a_job_and_an_operation_and_skips_a_filtered_one(admin, queue, tag, subscribe):
    event_type = f"order-{tag}.paid"
    receipts, fulfilment, refunds = f"receipts-{tag}", f"fulfilment-{tag}", f"refunds-{tag}"
    created = subscribe(receipts, event_type, {"type": "receipt.send", "queue": queue}, filter={"paid": True})
    assert created["created"] is True
    subscription = created["subscription"]
    assert (subscription["name"], subscription["event"], subscription["filter"], subscription["paused"],
            subscription["source"]) == (receipts, event_type, {"paid": True}, False, "rpc")
    assert subscription["target"]["args"] == "$payload" and subscription["target"]["queue"] == queue
    subscribe(fulfilment, event_type, {"operation": {"name": "fulfil-" + tag, "branches": {"main": ["pick.items"]},
                                                     "queue": queue + "-ops", "globals": {"warehouse": "north"}}})
    subscribe(refunds, event_type, {"type": "refund.make", "queue": queue}, filter={"paid": False})
    again = subscribe(receipts, event_type, {"type": "receipt.send", "queue": queue}, filter={"paid": True})
    assert again["created"] is False

    payload = {"order_id": 42, "paid": True}
    published = admin.events_publish(event_type, payload)
    assert published["duplicate"] is False
    triggered = by_subscription(published["triggered"])
    assert set(triggered) == {receipts, fulfilment}  # refunds' filter {"paid": false} does not match

    [job] = admin.reserve(queue)
    assert job["id"] == triggered[receipts]["job_id"] and job["type"] == "receipt.send"
    assert job["args"] == payload
    assert job["meta"] == {"event_id": published["id"], "event_type": event_type, "subscription": receipts}
    assert admin.reserve(queue) == []  # nothing from refunds

    operation = admin.operations_get(triggered[fulfilment]["operation_id"])
    assert operation["name"] == "fulfil-" + tag and operation["state"] == "running"
    assert operation["globals"] == {"warehouse": "north",
                                    "event": {"id": published["id"], "type": event_type, "payload": payload}}
    [step] = admin.reserve(queue + "-ops")
    assert step["type"] == "pick.items" and step["operation"]["globals"]["event"]["payload"] == payload

    event = admin.events_get(published["id"])
    assert (event["id"], event["type"], event["payload"]) == (published["id"], event_type, payload)
    assert "key" not in event and "replay_of" not in event and event["published_at"]
    unpaid = admin.events_publish(event_type, {"order_id": 43, "paid": False})
    assert set(by_subscription(unpaid["triggered"])) == {fulfilment, refunds}


def test_publish_without_payload_defaults_to_an_empty_object(admin, queue, tag, subscribe):
    event_type = f"ping-{tag}"
    subscribe(f"pings-{tag}", event_type, {"type": "ping.take", "queue": queue})
    subscribe(f"pings-paid-{tag}", event_type, {"type": "ping.paid", "queue": queue}, filter={"paid": True})
    published = admin.events_publish(event_type)
    assert [t["subscription"] for t in published["triggered"]] == [f"pings-{tag}"]
    assert admin.events_get(published["id"])["payload"] == {}
    [job] = admin.reserve(queue)
    assert job["args"] == {}


def test_dedupe_by_key(admin, queue, tag, subscribe):
    """Keys are global to the broker (whatever the event type), so they carry the test's suffix too."""
    event_type = f"invoice-{tag}.sent"
    subscribe(f"invoices-{tag}", event_type, {"type": "invoice.archive", "queue": queue})
    first = admin.events_publish(event_type, {"n": 1}, key=f"invoice-7-{tag}")
    again = admin.events_publish(event_type, {"n": 2}, key=f"invoice-7-{tag}")
    assert first["duplicate"] is False
    assert again == {"id": first["id"], "duplicate": True, "triggered": first["triggered"]}
    assert len(admin.reserve(queue, max=10)) == 1  # the duplicate started nothing

    other = admin.events_publish(event_type, {"n": 3}, key=f"invoice-8-{tag}")
    assert other["duplicate"] is False and other["id"] != first["id"]
    outside_window = admin.events_publish(event_type, {"n": 4}, key=f"invoice-7-{tag}", dedupe_ms=0)
    assert outside_window["duplicate"] is False and outside_window["id"] not in (first["id"], other["id"])
    assert sorted(job["args"]["n"] for job in admin.reserve(queue, max=10)) == [3, 4]
    assert admin.events_get(first["id"])["key"] == f"invoice-7-{tag}"


def test_a_wildcard_subscription_and_listing_by_prefix(admin, queue, tag, subscribe):
    prefix = f"shop-{tag}"
    subscribe(f"shop-all-{tag}", prefix + ".*", {"type": "shop.audit", "queue": queue, "args": {"fixed": True},
                                                 "priority": 5})
    paid = admin.events_publish(prefix + ".paid", {"n": 1})
    refunded = admin.events_publish(prefix + ".order.refunded", {"n": 2})
    bare = admin.events_publish(prefix, {"n": 3})  # "shop.*" means types starting with "shop."
    elsewhere = admin.events_publish(prefix + "s.paid", {"n": 4})
    assert [len(e["triggered"]) for e in (paid, refunded, bare, elsewhere)] == [1, 1, 0, 0]

    jobs = admin.reserve(queue, max=10)
    assert len(jobs) == 2 and all(job["args"] == {"fixed": True} and job["priority"] == 5 for job in jobs)
    assert sorted(job["meta"]["event_type"] for job in jobs) == [prefix + ".order.refunded", prefix + ".paid"]

    listed = admin.events_list(type=prefix + ".*")
    assert [event["id"] for event in listed["events"]] == [refunded["id"], paid["id"]]  # newest first
    assert [e["id"] for e in admin.events_list(type=prefix)["events"]] == [bare["id"]]
    first_page = admin.events_list(type=prefix + ".*", limit=1)
    assert [e["id"] for e in first_page["events"]] == [refunded["id"]] and first_page["next_cursor"]
    second_page = admin.events_list(type=prefix + ".*", limit=1, cursor=first_page["next_cursor"])
    assert [e["id"] for e in second_page["events"]] == [paid["id"]]
    since = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    assert admin.events_list(type=prefix + ".*", since=since)["events"] == []
    assert len(admin.events_list(type=prefix + ".*", since="2000-01-01T00:00:00Z")["events"]) == 2


def test_pause_and_resume(admin, queue, tag, subscribe):
    event_type = f"user-{tag}.created"
    name = f"welcome-{tag}"
    subscribe(name, event_type, {"type": "welcome.send", "queue": queue})
    paused = admin.subscriptions_pause(name)
    assert paused["name"] == name and paused["paused"] is True
    [listed] = [s for s in admin.subscriptions_list() if s["name"] == name]
    assert listed["paused"] is True and listed["event"] == event_type

    assert admin.events_publish(event_type, {"user": 1})["triggered"] == []
    assert admin.reserve(queue) == []

    assert admin.subscriptions_resume(name)["paused"] is False
    resumed = admin.events_publish(event_type, {"user": 2})
    [job] = admin.reserve(queue)
    assert resumed["triggered"] == [{"subscription": name, "job_id": job["id"]}] and job["args"] == {"user": 2}

    assert admin.subscriptions_delete(name) == {"deleted": True}
    assert name not in [s["name"] for s in admin.subscriptions_list()]
    assert admin.events_publish(event_type, {"user": 3})["triggered"] == []
    for method in (admin.subscriptions_delete, admin.subscriptions_pause, admin.subscriptions_resume):
        with pytest.raises(gantry.RPCError) as caught:
            method(name)
        assert caught.value.name == "not_found"


def test_replay(admin, queue, tag, subscribe):
    event_type = f"payment-{tag}.failed"
    name = f"dunning-{tag}"
    subscribe(name, event_type, {"type": "dunning.start", "queue": queue})
    original = admin.events_publish(event_type, {"payment": 9}, key=f"payment-9-{tag}")
    replayed = admin.events_replay(original["id"])
    assert replayed["duplicate"] is False and replayed["id"] != original["id"]
    assert [t["subscription"] for t in replayed["triggered"]] == [name]
    assert replayed["triggered"][0]["job_id"] != original["triggered"][0]["job_id"]
    assert sorted(job["args"]["payment"] for job in admin.reserve(queue, max=10)) == [9, 9]

    event = admin.events_get(replayed["id"])
    assert event["replay_of"] == original["id"] and event["type"] == event_type
    assert event["payload"] == {"payment": 9}

    admin.subscriptions_pause(name)  # replay starts what matches now: nothing, through a paused subscription
    assert admin.events_replay(original["id"])["triggered"] == []
    with pytest.raises(gantry.RPCError) as caught:
        admin.events_replay("999999999")
    assert caught.value.name == "not_found"


def test_events_get_shows_the_states_of_what_it_started(admin, queue, tag, subscribe):
    event_type = f"signup-{tag}.done"
    job_sub, operation_sub = f"signup-mail-{tag}", f"signup-flow-{tag}"
    subscribe(job_sub, event_type, {"type": "signup.mail", "queue": queue})
    subscribe(operation_sub, event_type, {"operation": {"name": "signup-" + tag,
                                                        "branches": {"main": ["signup.crm"]}, "queue": queue + "-ops"}})
    published = admin.events_publish(event_type, {"user": 5})

    def states():
        return {t["subscription"]: t["state"] for t in admin.events_get(published["id"])["triggered"]}
    assert states() == {job_sub: "available", operation_sub: "running"}

    [job] = admin.reserve(queue)
    assert states()[job_sub] == "reserved"
    admin.ack(job["id"])
    [step] = admin.reserve(queue + "-ops")
    admin.ack(step["id"])
    assert states() == {job_sub: "completed", operation_sub: "completed"}
    triggered = by_subscription(admin.events_get(published["id"])["triggered"])
    assert triggered[job_sub]["job_id"] == job["id"]
    assert triggered[operation_sub]["operation_id"] == step["operation"]["id"]

    with pytest.raises(gantry.RPCError) as caught:
        admin.events_get("999999999")
    assert caught.value.name == "not_found"


def test_refusals(admin, queue, tag, subscribe):
    with pytest.raises(gantry.RPCError) as caught:
        admin.subscriptions_upsert(f"bad-{tag}", f"x-{tag}", {"type": "x.do", "queue": queue}, filter=[1])
    assert (caught.value.code, caught.value.name, caught.value.field) == (-32602, "invalid_params", "filter")

    with pytest.raises(gantry.RPCError) as caught:
        admin.events_publish(f"order-{tag}.*", {})
    assert (caught.value.code, caught.value.field) == (-32602, "type")

    with pytest.raises(gantry.RPCError) as caught:
        admin.subscriptions_upsert(f"bad-{tag}", f"x-{tag}", {"operation": {"name": "x", "branches": {}}})
    assert caught.value.code == -32602 and caught.value.field.startswith("target.operation.branches")
    assert f"bad-{tag}" not in [s["name"] for s in admin.subscriptions_list()]


def test_events_from_the_asyncio_client(url, queue, tag):
    event_type = f"async-{tag}.happened"
    name = f"async-{tag}"

    async def main():
        async with AsyncClient(url, name="pytest-async-events") as client:
            created = await client.subscriptions_upsert(name, f"async-{tag}.*", {"type": "async.do", "queue": queue},
                                                        filter={"ok": True})
            try:
                assert created["created"] is True
                assert (await client.subscriptions_pause(name))["paused"] is True
                assert (await client.events_publish(event_type, {"ok": True}))["triggered"] == []
                assert (await client.subscriptions_resume(name))["paused"] is False
                published = await client.events_publish(event_type, {"ok": True}, key=f"k-{tag}", dedupe_ms=60_000)
                assert (await client.events_publish(event_type, {"ok": True}, key=f"k-{tag}"))["duplicate"] is True
                [job] = await client.reserve(queue)
                assert published["triggered"] == [{"subscription": name, "job_id": job["id"]}]
                assert (await client.events_get(published["id"]))["triggered"][0]["state"] == "reserved"
                replayed = await client.events_replay(published["id"])
                listed = await client.events_list(type=event_type, limit=10)
                assert [event["id"] for event in listed["events"]][:2] == [replayed["id"], published["id"]]
                assert name in [s["name"] for s in await client.subscriptions_list()]
            finally:
                assert await client.subscriptions_delete(name) == {"deleted": True}
    asyncio.run(main())
