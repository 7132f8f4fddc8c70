#!/usr/bin/env python3
"""Peer benchmark for issue 7: PgQueuer doing the same no-op work Gantry's benchmark does.

    python3 peer_bench.py --dsn postgresql://postgres@127.0.0.1:55432/postgres \
        [--scenarios enqueue_single,enqueue_batch,end_to_end,drain_backlog,wakeup_latency] \
        [--quick] [--json out.json]

Run it from the virtualenv made by setup_venv.sh (PgQueuer and asyncpg pinned there).

The DSN names a server and a database to connect to first; the benchmark itself runs in a
database of its own (--database, default `peer_bench`), created when missing. Before every
scenario it drops PgQueuer's objects there (`Queries.uninstall()`) and installs them again
(`Queries.install()`, i.e. what `pgq install` does, default durability "durable": all tables
logged), so each scenario starts on empty, freshly created tables and runs are repeatable.

Everything goes through PgQueuer's public API, as a user runs it:
  * producers enqueue with `Queries.enqueue(...)` (scalar arguments for one job, lists for a
    batch; both are one INSERT ... SELECT FROM UNNEST statement);
  * consumers are `QueueManager`s with an `@qm.entrypoint("noop")` handler, run with
    `qm.run(batch_size=..., ...)`, which is what `pgq run` does for one factory.
Where PgQueuer's API made the choice for us, a comment marked "PEER:" says so.

The one piece of instrumentation: consumers get a `Queries` subclass whose `log_jobs` (the
statement by which a QueueManager acknowledges finished jobs: it DELETEs them from the queue
table and INSERTs them into pgqueuer_log) notes the time after that statement returns. That
is when a job is really complete (gone from the queue); the handler returning is not,
because PgQueuer buffers acknowledgements.

All clients (producers, consumers, the timing) run in this one Python process on one event
loop (uvloop, as `pgq run` uses), with one asyncpg connection per producer and per
QueueManager.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Awaitable, Callable

import asyncpg
import pgqueuer
from pgqueuer import Queries, QueueManager
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchkit import ms, now, percentile  # noqa: E402

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a pgqueuer dependency on Linux
    uvloop = None

PEER = "pgqueuer"
PEER_VERSION = getattr(pgqueuer, "__version__", "unknown")
ENTRYPOINT = "noop"
PAYLOAD = b'{"n":0}'  # a small payload, like Gantry's one-int args

SCENARIOS = ["enqueue_single", "enqueue_batch", "end_to_end", "drain_backlog", "wakeup_latency"]

# (full, --quick) job counts per scenario.
JOBS = {
    "enqueue_single": (50_000, 5_000),
    "enqueue_batch": (200_000, 20_000),
    "end_to_end": (30_000, 3_000),
    "drain_backlog": (100_000, 10_000),
    "wakeup_latency": (1_000, 200),
}


@dataclass
class Result:
    scenario: str
    jobs: int
    seconds: float
    jobs_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        out = {
            "scenario": self.scenario,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 3),
            "jobs_per_s": None if self.jobs_per_s is None else round(self.jobs_per_s, 1),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        }
        if self.notes:
            out["notes"] = self.notes
        if self.extra:
            out["extra"] = self.extra
        return out


# --------------------------------------------------------------------------------------------
# Progress line on stderr


class Progress:
    """Prints `scenario: done/total (rate/s)` on one stderr line, twice a second."""

    def __init__(self, scenario: str, total: int, count: Callable[[], int], what: str) -> None:
        self.scenario, self.total, self.count, self.what = scenario, total, count, what
        self.task: asyncio.Task[None] | None = None
        self.tty = sys.stderr.isatty()

    async def _run(self) -> None:
        start = now()
        last = -1.0
        while True:
            await asyncio.sleep(0.5)
            done = self.count()
            elapsed = now() - start
            # On a terminal, rewrite the line in place; otherwise one line every 5 s.
            if self.tty or elapsed - last >= 5.0:
                last = elapsed
                rate = done / elapsed if elapsed > 0 else 0.0
                line = (
                    f"  {self.scenario}: {done:,}/{self.total:,} {self.what} "
                    f"({rate:,.0f}/s, {elapsed:.1f}s)"
                )
                sys.stderr.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
                sys.stderr.flush()

    def __enter__(self) -> "Progress":
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self.task:
            self.task.cancel()
        if self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# Instrumented Queries and consumers


class Recorder:
    """Completion times by job id, filled in by TimedQueries.log_jobs."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.done: dict[int, float] = {}
        self.started: dict[int, float] = {}  # handler start times (wakeup_latency)
        self.failed = 0
        self.all_done = asyncio.Event()

    def completed(self, ids: list[int], failed: int) -> None:
        t = now()
        for jid in ids:
            self.done[jid] = t
        self.failed += failed
        if len(self.done) + self.failed >= self.expected:
            self.all_done.set()


class TimedQueries(Queries):
    """PgQueuer's own Queries, noting when a batch of acknowledgements has been committed.

    PEER: a QueueManager acknowledges finished jobs through Queries.log_jobs, called from a
    buffer (JobStatusLogBuffer) that flushes when it holds `batch_size` entries or every
    ~0.1 s, whichever comes first; with batch_size=1 every job is flushed on its own unless a
    flush is already under way, in which case it waits for the next one. The statement is
    DELETE FROM pgqueuer ... + INSERT INTO pgqueuer_log ..., in one autocommit statement.
    """

    recorder: Recorder | None = None

    async def log_jobs(self, job_status):  # type: ignore[override]
        await super().log_jobs(job_status)
        if self.recorder is not None:
            ok = [job.id for job, status, _ in job_status if status == "successful"]
            self.recorder.completed(ok, len(job_status) - len(ok))


@dataclass
class Consumers:
    qms: list[QueueManager]
    tasks: list[asyncio.Task[None]]
    conns: list[asyncpg.Connection]

    def check(self) -> None:
        for t in self.tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise RuntimeError("a QueueManager stopped") from t.exception()

    async def stop(self) -> None:
        for qm in self.qms:
            qm.shutdown.set()
        done, pending = await asyncio.wait(self.tasks, timeout=30)
        for t in pending:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)


async def start_consumers(
    dsn: str,
    count: int,
    batch_size: int,
    recorder: Recorder,
    *,
    max_concurrent_tasks: int | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Consumers:
    """`count` QueueManagers, each on its own asyncpg connection, running a no-op handler."""
    conns = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(count)))
    qms: list[QueueManager] = []
    for conn in conns:
        queries = TimedQueries(AsyncpgDriver(conn))
        queries.recorder = recorder
        qm = QueueManager(queries)

        @qm.entrypoint(ENTRYPOINT)
        async def noop(job: Job) -> None:
            if on_start is not None:
                on_start(job.id)

        qms.append(qm)

    # PEER: QueueManager.run waits on LISTEN/NOTIFY (a statement-level trigger on the queue
    # table NOTIFYs the channel on every INSERT, UPDATE and DELETE statement) and falls back to
    # polling after dequeue_timeout; we keep the defaults of `pgq run` (dequeue_timeout 30 s,
    # heartbeat_timeout 30 s) except batch_size and max_concurrent_tasks, which we set.
    tasks = [
        asyncio.get_running_loop().create_task(
            qm.run(batch_size=batch_size, max_concurrent_tasks=max_concurrent_tasks)
        )
        for qm in qms
    ]
    consumers = Consumers(qms, tasks, list(conns))

    # Ready when every QueueManager answers its own NOTIFY health probe, i.e. it has run its
    # schema check and is LISTENing.
    async def ready(qm: QueueManager) -> None:
        deadline = now() + 60
        while True:
            consumers.check()
            try:
                await qm.listener_healthy(timeout=timedelta(seconds=0.5))
                return
            except Exception:
                if now() > deadline:
                    raise

    await asyncio.gather(*(ready(qm) for qm in qms))
    return consumers


async def wait_all_done(recorder: Recorder, consumers: Consumers, timeout: float) -> None:
    deadline = now() + timeout
    while not recorder.all_done.is_set():
        consumers.check()
        if now() > deadline:
            raise TimeoutError(
                f"only {len(recorder.done):,} of {recorder.expected:,} jobs completed "
                f"in {timeout:.0f} s"
            )
        try:
            await asyncio.wait_for(recorder.all_done.wait(), timeout=0.2)
        except asyncio.TimeoutError:
            pass


async def producer_queries(dsn: str, count: int) -> tuple[list[Queries], list[asyncpg.Connection]]:
    conns = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(count)))
    return [Queries(AsyncpgDriver(c)) for c in conns], list(conns)


async def close_all(conns: list[asyncpg.Connection]) -> None:
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


async def preload(dsn: str, total: int, batch: int = 1000) -> None:
    """Not timed: put `total` jobs in the queue with the batch API."""
    (q,), conns = await producer_queries(dsn, 1)
    try:
        for start in range(0, total, batch):
            n = min(batch, total - start)
            await q.enqueue([ENTRYPOINT] * n, [PAYLOAD] * n, [0] * n)
    finally:
        await close_all(conns)


# --------------------------------------------------------------------------------------------
# Scenarios


@dataclass
class Config:
    dsn: str
    quick: bool
    producers: int = 64
    consumers: int = 64
    batch: int = 1000
    batch_producers: int = 1
    drain_consumers: int = 8
    drain_batch: int = 100
    wakeup_interval: float = 0.005
    e2e_model: str = "single"
    e2e_batch: int = 1

    def jobs(self, scenario: str) -> int:
        full, quick = JOBS[scenario]
        return quick if self.quick else full


async def enqueue_single(cfg: Config) -> Result:
    total = cfg.jobs("enqueue_single")
    queries, conns = await producer_queries(cfg.dsn, cfg.producers)
    latencies: list[float] = []
    issued = 0

    async def producer(q: Queries) -> None:
        nonlocal issued
        while issued < total:
            issued += 1
            t0 = now()
            # PEER: one job per call, scalar arguments. Each INSERT fires PgQueuer's
            # statement-level trigger, which NOTIFYs the channel; PostgreSQL serialises the
            # commits of notifying transactions (a database-wide lock, wait event Lock/object),
            # so these 64 producers' commits are not grouped into shared WAL flushes.
            await q.enqueue(ENTRYPOINT, PAYLOAD)
            latencies.append(now() - t0)

    try:
        with Progress("enqueue_single", total, lambda: len(latencies), "enqueued"):
            start = now()
            await asyncio.gather(*(producer(q) for q in queries))
            seconds = now() - start
    finally:
        await close_all(conns)
    return Result(
        "enqueue_single",
        total,
        seconds,
        total / seconds,
        ms(percentile(latencies, 50)),
        ms(percentile(latencies, 99)),
        notes=f"{cfg.producers} producers, one connection each; latency = one enqueue call",
    )


async def enqueue_batch(cfg: Config) -> Result:
    total = cfg.jobs("enqueue_batch")
    queries, conns = await producer_queries(cfg.dsn, cfg.batch_producers)
    done = 0
    issued = 0
    call_latencies: list[float] = []

    async def producer(q: Queries) -> None:
        nonlocal done, issued
        while issued < total:
            n = min(cfg.batch, total - issued)
            issued += n
            t0 = now()
            # PEER: the batch API is the same enqueue() given lists (one INSERT ... UNNEST).
            await q.enqueue([ENTRYPOINT] * n, [PAYLOAD] * n, [0] * n)
            call_latencies.append(now() - t0)
            done += n

    try:
        with Progress("enqueue_batch", total, lambda: done, "enqueued"):
            start = now()
            await asyncio.gather(*(producer(q) for q in queries))
            seconds = now() - start
    finally:
        await close_all(conns)
    return Result(
        "enqueue_batch",
        total,
        seconds,
        total / seconds,
        None,
        None,
        notes=f"batches of {cfg.batch}, {cfg.batch_producers} producer(s)",
        extra={
            "batch_call_p50_ms": ms(percentile(call_latencies, 50)),
            "batch_call_p99_ms": ms(percentile(call_latencies, 99)),
        },
    )


async def end_to_end(cfg: Config) -> Result:
    total = cfg.jobs("end_to_end")
    recorder = Recorder(total)
    if cfg.e2e_model == "single":
        # PEER: the idiomatic way: one QueueManager (what one `pgq run` worker process is) with
        # max_concurrent_tasks=64, i.e. "the peer's worker with concurrency 64", fetching one
        # job per dequeue (batch_size=1; `pgq run` defaults to 10). batch_size=1 also makes the
        # ack buffer flush after every job. One QueueManager talks over one connection
        # (AsyncpgDriver serialises its queries with a lock): dequeues, acks and its LISTEN.
        consumers = await start_consumers(
            cfg.dsn, 1, cfg.e2e_batch, recorder, max_concurrent_tasks=cfg.consumers
        )
        model = f"1 QueueManager, batch_size={cfg.e2e_batch}, max_concurrent_tasks={cfg.consumers}"
    else:
        # PEER: the literal reading: 64 QueueManagers, each on its own connection and LISTENing,
        # each fetching one job per dequeue (batch_size=1). max_concurrent_tasks must be
        # >= 2 * batch_size, so 2 is the tightest cap: a manager may hold its running job plus
        # one more picked while that job's ack is still buffered.
        consumers = await start_consumers(
            cfg.dsn, cfg.consumers, cfg.e2e_batch, recorder, max_concurrent_tasks=2 * cfg.e2e_batch
        )
        model = (
            f"{cfg.consumers} QueueManagers, batch_size={cfg.e2e_batch}, "
            f"max_concurrent_tasks={2 * cfg.e2e_batch}"
        )
    queries, conns = await producer_queries(cfg.dsn, cfg.producers)
    enqueued_at: dict[int, float] = {}
    issued = 0

    async def producer(q: Queries) -> None:
        nonlocal issued
        while issued < total:
            issued += 1
            t0 = now()
            (jid,) = await q.enqueue(ENTRYPOINT, PAYLOAD)
            enqueued_at[jid] = t0

    try:
        with Progress("end_to_end", total, lambda: len(recorder.done), "completed"):
            start = now()
            await asyncio.gather(*(producer(q) for q in queries))
            producers_done = now()
            await wait_all_done(recorder, consumers, timeout=max(120.0, total / 50))
            end = max(recorder.done.values())
    finally:
        await close_all(conns)
        await consumers.stop()
    latencies = [recorder.done[j] - t for j, t in enqueued_at.items() if j in recorder.done]
    seconds = end - start
    return Result(
        "end_to_end",
        total,
        seconds,
        total / seconds,
        ms(percentile(latencies, 50)),
        ms(percentile(latencies, 99)),
        notes=(
            f"{cfg.producers} producers one job per call; consumers: {model}; latency = "
            "enqueue call start to the ack (log_jobs) statement returning"
        ),
        extra={
            "consumer_model": cfg.e2e_model,
            "batch_size": cfg.e2e_batch,
            "producers_done_s": round(producers_done - start, 3),
            "failed": recorder.failed,
        },
    )


async def drain_backlog(cfg: Config) -> Result:
    total = cfg.jobs("drain_backlog")
    with Progress("drain_backlog (preload)", total, lambda: 0, "preloading"):
        await preload(cfg.dsn, total)
    recorder = Recorder(total)
    # PEER: batch_size is the dequeue batch and also the ack buffer's flush size. We leave
    # max_concurrent_tasks unset (the `pgq run` default: no cap), so a manager keeps dequeuing
    # while earlier batches' handlers and acks run.
    start = now()
    consumers = await start_consumers(cfg.dsn, cfg.drain_consumers, cfg.drain_batch, recorder)
    try:
        with Progress("drain_backlog", total, lambda: len(recorder.done), "completed"):
            await wait_all_done(recorder, consumers, timeout=max(120.0, total / 50))
            end = max(recorder.done.values())
    finally:
        await consumers.stop()
    seconds = end - start
    return Result(
        "drain_backlog",
        total,
        seconds,
        total / seconds,
        None,
        None,
        notes=(
            f"{cfg.drain_consumers} QueueManagers, batch_size={cfg.drain_batch}; timed from "
            "starting them (their schema check and LISTEN included) to the last ack"
        ),
        extra={"failed": recorder.failed},
    )


async def wakeup_latency(cfg: Config) -> Result:
    total = cfg.jobs("wakeup_latency")
    recorder = Recorder(total)
    handler_started: dict[int, float] = {}

    def on_start(jid: int) -> None:
        handler_started[jid] = now()

    # PEER: one idle QueueManager, batch_size=1; it sleeps on LISTEN/NOTIFY (the default
    # dequeue_timeout of 30 s is only the polling fallback), so this measures the NOTIFY path.
    consumers = await start_consumers(cfg.dsn, 1, 1, recorder, on_start=on_start)
    (q,), conns = await producer_queries(cfg.dsn, 1)
    call_start: dict[int, float] = {}
    call_return: dict[int, float] = {}
    try:
        with Progress("wakeup_latency", total, lambda: len(handler_started), "handled"):
            start = now()
            for i in range(total):
                # A job every 5 ms, on a fixed schedule (not 5 ms after the previous return).
                delay = start + i * cfg.wakeup_interval - now()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = now()
                (jid,) = await q.enqueue(ENTRYPOINT, PAYLOAD)
                call_return[jid] = now()
                call_start[jid] = t0
            await wait_all_done(recorder, consumers, timeout=60)
            seconds = now() - start
    finally:
        await close_all(conns)
        await consumers.stop()
    from_return = [handler_started[j] - t for j, t in call_return.items() if j in handler_started]
    from_start = [handler_started[j] - t for j, t in call_start.items() if j in handler_started]
    return Result(
        "wakeup_latency",
        total,
        seconds,
        None,
        ms(percentile(from_return, 50)),
        ms(percentile(from_return, 99)),
        notes=(
            f"one idle QueueManager (batch_size=1), a job every {cfg.wakeup_interval * 1000:g} "
            "ms; latency = enqueue call returned -> handler started"
        ),
        extra={
            "from_call_start_p50_ms": ms(percentile(from_start, 50)),
            "from_call_start_p99_ms": ms(percentile(from_start, 99)),
            "max_ms": ms(max(from_return) if from_return else None),
        },
    )


RUNNERS: dict[str, Callable[[Config], Awaitable[Result]]] = {
    "enqueue_single": enqueue_single,
    "enqueue_batch": enqueue_batch,
    "end_to_end": end_to_end,
    "drain_backlog": drain_backlog,
    "wakeup_latency": wakeup_latency,
}


# --------------------------------------------------------------------------------------------
# Database setup


def dsn_with_database(dsn: str, database: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))


async def ensure_database(dsn: str, database: str) -> str:
    """Create `database` on the server when missing; return a DSN for it."""
    if not database:
        return dsn
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return dsn_with_database(dsn, database)


async def fresh_schema(dsn: str) -> None:
    """Drop PgQueuer's objects and install them again (what `pgq uninstall; pgq install` do)."""
    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        await queries.uninstall()
        await queries.install()
        try:  # Start each scenario without a pending checkpoint's worth of dirty buffers.
            await conn.execute("CHECKPOINT")
        except asyncpg.PostgresError:
            pass
    finally:
        await conn.close()


async def server_info(dsn: str) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        info = {"server_version": await conn.fetchval("SHOW server_version")}
        for name in ("fsync", "synchronous_commit", "max_connections", "shared_buffers"):
            info[name] = await conn.fetchval(f"SHOW {name}")
        return info
    finally:
        await conn.close()


def cpu_sample() -> tuple[float, float, float] | None:
    """(machine busy jiffies, machine total jiffies, this process's CPU seconds); Linux only."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields), time.process_time()


def cpu_report(before, after, seconds: float) -> dict:
    """How busy the whole machine was during a scenario, and how much of it was this process.

    The machine figure includes the PostgreSQL server and anything else running: on a shared
    machine, a busy figure well above this process's plus the server's share means the run
    was competing with other work.
    """
    if before is None or after is None or after[1] <= before[1]:
        return {}
    ncpu = os.cpu_count() or 1
    return {
        "machine_cpu_busy_pct": round(100.0 * (after[0] - before[0]) / (after[1] - before[1]), 1),
        "bench_process_cpu_pct_of_one_core": round(100.0 * (after[2] - before[2]) / seconds, 1),
        "cores": ncpu,
    }


def print_table(results: list[Result]) -> None:
    def fmt(v: float | None, digits: int = 1) -> str:
        return "-" if v is None else f"{v:,.{digits}f}"

    header = f"{'scenario':<16} {'jobs':>9} {'seconds':>9} {'jobs/s':>10} {'p50 ms':>9} {'p99 ms':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.scenario:<16} {r.jobs:>9,} {r.seconds:>9.2f} {fmt(r.jobs_per_s, 0):>10} "
            f"{fmt(r.p50_ms, 2):>9} {fmt(r.p99_ms, 2):>9}"
        )
    sys.stdout.flush()


async def main_async(args: argparse.Namespace) -> int:
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in names if s not in RUNNERS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}",
              file=sys.stderr)
        return 2
    dsn = await ensure_database(args.dsn, args.database)
    cfg = Config(
        dsn=dsn,
        quick=args.quick,
        producers=args.producers,
        consumers=args.consumers,
        batch_producers=args.batch_producers,
        e2e_model=args.e2e_model,
        e2e_batch=args.e2e_batch,
    )
    info = await server_info(dsn)
    print(
        f"{PEER} {PEER_VERSION} (asyncpg {asyncpg.__version__}, Python {platform.python_version()}, "
        f"{'uvloop' if uvloop else 'asyncio'}) on PostgreSQL {info['server_version']}, "
        f"fsync={info['fsync']} synchronous_commit={info['synchronous_commit']}"
        f"{' [quick]' if args.quick else ''}",
        file=sys.stderr,
    )
    results: list[Result] = []
    for name in names:
        await fresh_schema(dsn)
        sys.stderr.write(f"{name} ...\n")
        sys.stderr.flush()
        before, t0 = cpu_sample(), now()
        result = await RUNNERS[name](cfg)
        result.extra.update(cpu_report(before, cpu_sample(), now() - t0))
        results.append(result)
        busy = result.extra.get("machine_cpu_busy_pct")
        sys.stderr.write(
            f"{name}: done in {result.seconds:.2f} s"
            + (f" (machine CPU {busy:.0f}% busy, this process "
               f"{result.extra['bench_process_cpu_pct_of_one_core']:.0f}% of a core)"
               if busy is not None else "")
            + "\n"
        )
    print_table(results)
    if args.json:
        report = {
            "peer": PEER,
            "version": PEER_VERSION,
            "driver": f"asyncpg {asyncpg.__version__}",
            "python": platform.python_version(),
            "event_loop": "uvloop" if uvloop else "asyncio",
            "quick": args.quick,
            "server": info,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "results": [r.as_json() for r in results],
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dsn", required=True, help="postgresql://user@host:port/db to connect to first")
    p.add_argument("--database", default="peer_bench",
                   help="database to run in, created if missing (default peer_bench; '' = the DSN's)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--quick", action="store_true", help="a tenth of the jobs")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--producers", type=int, default=64)
    p.add_argument("--consumers", type=int, default=64, help="end_to_end consumers")
    p.add_argument("--batch-producers", type=int, default=1,
                   help="concurrent producers in enqueue_batch (default 1)")
    p.add_argument("--e2e-model", choices=["single", "per-consumer"], default="single",
                   help="end_to_end consumers: one QueueManager with max_concurrent_tasks="
                        "--consumers (default), or --consumers QueueManagers of one job each")
    p.add_argument("--e2e-batch", type=int, default=1,
                   help="end_to_end consumers' batch_size (default 1: one job per fetch)")
    args = p.parse_args()
    runner = uvloop.run if uvloop else asyncio.run
    return runner(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
