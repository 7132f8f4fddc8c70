#!/usr/bin/env python3
"""A naive jobs.get server: the yardstick for the broker's CPU per request (scripts/benchmark.py).

Newline-delimited JSON-RPC 2.0 on 127.0.0.1 (--port, 0 = any free one; the port is printed on stdout), answering
`jobs.get` {"id": "<job id>"} with the row of gantry.jobs, read by a prepared SELECT, and an error for anything
else. No validation beyond that, no batches, no pool tuning: what a first version of a broker would do.
Run it from the virtualenv made by setup_venv.sh (asyncpg, uvloop).
"""
import argparse
import asyncio
import json

import asyncpg

try:
    import uvloop
except ImportError:
    uvloop = None

SELECT = """SELECT id::text, type, queue, args, state, priority, attempt, max_attempts, run_at, enqueued_at, reserved_at,
                   lease_expires_at, timeout_ms, expires_at, unique_key, tags, meta, errors, cancel_requested_at
            FROM gantry.jobs WHERE id = $1"""


def error(request_id, code, message):
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


async def answer(line, select):
    try:
        request = json.loads(line)
        if request.get("method") != "jobs.get":
            return error(request.get("id"), -32601, "only jobs.get is served here")
        row = await select.fetchrow(int(request["params"]["id"]))
    except json.JSONDecodeError:
        return error(None, -32700, "not JSON")
    except (ValueError, KeyError, TypeError, AttributeError):
        return error(None, -32600, 'not a jobs.get request: {"jsonrpc":"2.0","id":1,"method":"jobs.get","params":{"id":"1"}}')
    if row is None:
        return error(request.get("id"), -32002, "no such job")
    # Like Gantry: absent fields are left out, timestamps in ISO 8601, jsonb columns as JSON.
    job = {name: value.isoformat() if hasattr(value, "isoformat") else value for name, value in row.items() if value is not None}
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": job}


async def main(options):
    # jsonb comes back as text by default; decode it so args, meta and errors are sent as JSON, not strings.
    async def decode_jsonb(connection):
        await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    pool = await asyncpg.create_pool(options.dsn, min_size=1, max_size=8, init=decode_jsonb)

    async def serve(reader, writer):
        async with pool.acquire() as connection:  # one database connection per client connection
            select = await connection.prepare(SELECT)
            while line := await reader.readline():
                writer.write(json.dumps(await answer(line, select)).encode() + b"\n")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", options.port)
    print(f"reference listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="postgresql://user@host:port/gantry (a database gantryd migrated)")
    parser.add_argument("--port", type=int, default=0)
    (uvloop.run if uvloop else asyncio.run)(main(parser.parse_args()))
