import asyncio

import pytest

import gantry
from gantry.aio import AsyncClient


def test_async_round_trip_and_concurrency(url, queue):
    async def main():
        async with AsyncClient(url, name="pytest-async") as client:
            job_id = await client.enqueue("email.send", {"to": "ana@example.com"}, queue=queue, tags=["a"])
            job = await client.job(job_id)
            assert (job["state"], job["args"], job["tags"]) == ("available", {"to": "ana@example.com"}, ["a"])

            # A long poll in flight holds up none of the 100 concurrent calls on the same connection.
            poll = asyncio.ensure_future(client.reserve(queue + "-empty", wait_ms=2000))
            ids = await asyncio.wait_for(
                asyncio.gather(*[client.enqueue("py.async", [n], queue=queue) for n in range(100)]), 1.5)
            assert len(set(ids)) == 100
            assert not poll.done()
            assert await poll == []

            [reserved] = await client.reserve([queue], max=1, lease_ms=10_000)
            assert reserved["id"] == job_id
            assert (await client.extend(job_id))["leases"][0]["id"] == job_id
            assert await client.ack(job_id, {"sent": True}) == {"ok": True}
            assert (await client.job(job_id))["result"] == {"sent": True}
            first, second = [job["id"] for job in await client.reserve([queue], max=2)]
            answer = await client.ack_many([first, second, job_id], results={second: 2})
            assert answer == {"ok": False, "acked": [first, second], "lost": [{"id": job_id, "state": "completed"}]}
            assert (await client.job(second))["result"] == 2
            assert (await client.stats())["queues"][queue]["counts"]["available"] == 98
            assert client.connections_opened == 1
    asyncio.run(main())


def test_async_errors(url, queue):
    async def main():
        async with AsyncClient(url) as client:
            with pytest.raises(gantry.RPCError) as caught:
                await client.enqueue("x", queue=queue, delay_ms=5, run_at="2026-01-01T00:00:00Z")
            assert (caught.value.code, caught.value.name, caught.value.field) == (-32602, "invalid_params",
                                                                                  "delay_ms")
            with pytest.raises(gantry.RPCError) as caught:
                await client.call("nope")
            assert caught.value.name == "method_not_found"
            with pytest.raises(gantry.RPCError) as caught:
                await client.jobs_retry("999999999")
            assert caught.value.name == "not_found"
    asyncio.run(main())


def test_async_notifications_and_reconnect(url, admin, queue):
    worker_id = "pytest-async-" + queue

    async def main():
        heard = asyncio.Queue()

        async def on_notification(method, params):
            await heard.put(method)

        client = AsyncClient(url, worker={"id": worker_id, "queues": [queue]}, on_notification=on_notification)
        await client.stats()
        session = client.session_id
        await asyncio.to_thread(admin.workers_quiet, worker_id)
        assert await asyncio.wait_for(heard.get(), 5) == "worker.quiet"

        poll = asyncio.ensure_future(client.reserve(queue, wait_ms=5000))
        await asyncio.sleep(0.2)
        client._conn.writer.transport.abort()  # the connection drops under a waiting call
        with pytest.raises(gantry.ConnectionLost):
            await asyncio.wait_for(poll, 5)
        await client.stats()  # reconnected, with hello again
        assert client.connections_opened == 2 and client.session_id != session
        await client.close()
    asyncio.run(main())


def test_async_storage_unavailable_is_resent(fake_broker):
    tries = []

    def answer(request):
        tries.append(1)
        if len(tries) == 1:
            return [{"jsonrpc": "2.0", "id": request["id"], "error": {
                "code": -32004, "message": "away", "data": {"retryable": True, "applied": False}}}]
        return [{"jsonrpc": "2.0", "id": request["id"], "result": {"ids": ["1", "2"]}}]

    broker = fake_broker(answer)

    async def main():
        async with AsyncClient(broker.url) as client:
            return await client.enqueue_batch([{"type": "a"}, {"type": "b"}])
    assert asyncio.run(main()) == ["1", "2"]
    assert len(tries) == 2
