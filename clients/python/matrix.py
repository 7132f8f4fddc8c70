#!/usr/bin/env python3
"""The Python side of the cross-language matrix test (every client implements the same contract).

    matrix.py enqueue COUNT QUEUE   enqueue COUNT jobs of type matrix.echo, args {"from": "python", "n": i}
                                    (i = 0 .. COUNT-1) to QUEUE; print each id on its own line; exit 0
    matrix.py work COUNT QUEUE      work QUEUE with a matrix.echo handler answering
                                    {"by": "python", "from": args["from"], "n": args["n"]} until COUNT jobs are
                                    completed, then exit 0; exit 1 after 60 s without finishing
    matrix.py step QUEUE            work QUEUE with a matrix.step handler, a step of an operation: it appends
                                    "python" to the operation's global "trail" (a list), then exit 0 once that
                                    one step is completed, taking no other; exit 1 after 60 s without

The broker's address is $GANTRY_URL (host:port). ($MATRIX_DEADLINE_S overrides the 60 s, for tests.)
"""
import logging
import os
import pathlib
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import gantry  # noqa: E402

DEADLINE_S = float(os.environ.get("MATRIX_DEADLINE_S", 60))
BATCH = 1000


def usage():
    print(__doc__.strip(), file=sys.stderr)
    return 64


def enqueue(url, count, queue):
    with gantry.Client(url, name="matrix-python") as client:
        for start in range(0, count, BATCH):
            jobs = [{"type": "matrix.echo", "args": {"from": "python", "n": n}, "queue": queue}
                    for n in range(start, min(count, start + BATCH))]
            for job_id in client.enqueue_batch(jobs):
                print(job_id, flush=True)
    return 0


def work(url, count, queue):
    if count == 0:
        return 0
    worker = gantry.Worker(url, [queue], concurrency=min(count, 8), id=f"matrix-python:{os.getpid()}",
                           poll_ms=500)

    @worker.handler("matrix.echo")
    def echo(job):
        return {"by": "python", "from": job.args["from"], "n": job.args["n"]}

    outcome = {}

    def watch():
        deadline = time.monotonic() + DEADLINE_S
        while worker.completed < count:
            if time.monotonic() > deadline:
                outcome["timed_out"] = True
                worker.stop()
                return
            time.sleep(0.02)
        worker.shutdown()  # finish (and ack) anything else already reserved, reserve nothing more

    threading.Thread(target=watch, daemon=True).start()
    worker.run()
    if outcome.get("timed_out"):
        print(f"matrix.py: only {worker.completed} of {count} jobs completed within {DEADLINE_S:g} s",
              file=sys.stderr)
        return 1
    return 0


def step(url, queue):
    # Concurrency 1 and a shutdown before the handler returns: the worker reserves nothing while the step runs,
    # so it takes no second step (the next one of the operation becomes available as soon as this one is acked).
    worker = gantry.Worker(url, [queue], concurrency=1, id=f"matrix-python-step:{os.getpid()}", poll_ms=500)

    @worker.handler("matrix.step")
    def append(job):
        trail = job.operation["globals"].get("trail", [])
        worker.shutdown()
        return gantry.StepResult(set={"trail": trail + ["python"]})

    timer = threading.Timer(DEADLINE_S, worker.stop)
    timer.daemon = True
    timer.start()
    worker.run()
    timer.cancel()
    if worker.completed < 1:
        print(f"matrix.py: no matrix.step step completed within {DEADLINE_S:g} s", file=sys.stderr)
        return 1
    return 0


def main(argv):
    logging.basicConfig(level=logging.WARNING, format="matrix.py: %(message)s")
    stepping = len(argv) == 3 and argv[1] == "step"
    if not stepping and (len(argv) != 4 or argv[1] not in ("enqueue", "work") or not argv[2].isdigit()):
        return usage()
    url = os.environ.get("GANTRY_URL")
    if not url:
        print("matrix.py: set GANTRY_URL to the broker's host:port", file=sys.stderr)
        return 64
    try:
        if stepping:
            return step(url, argv[2])
        count, queue = int(argv[2]), argv[3]
        return (enqueue if argv[1] == "enqueue" else work)(url, count, queue)
    except (gantry.GantryError, OSError) as error:
        print(f"matrix.py: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
