"""What the benchmark scripts share: the clock, nearest-rank percentiles, and threads released together.

Imported by Benchmarks/peer/peer_bench.py, Benchmarks/beanstalkd/beanstalk_bench.py and scripts/benchmark.py (each
puts this folder on sys.path), so Gantry and its peers are timed and summarised the same way."""
from __future__ import annotations

import threading
import time
from typing import Callable


def now() -> float:
    return time.perf_counter()


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (as Gantry's bench computes it); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))  # ceil(p/100 * n)
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def run_threads(targets: list[Callable[[], None]], on_failure: Callable[[], None] | None = None) -> float:
    """Runs every target in a thread of its own, all released at once; returns the moment they were. A target's
    exception is raised here (a silent dead thread would only look slow), after `on_failure` has let the
    others stop (a worker waiting for a count to fill, say)."""
    gate = threading.Barrier(len(targets) + 1)
    errors: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        gate.wait()
        try:
            target()
        except BaseException as error:
            errors.append(error)
            if on_failure:
                on_failure()

    threads = [threading.Thread(target=run, args=(target,), daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    released = now()
    gate.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return released
