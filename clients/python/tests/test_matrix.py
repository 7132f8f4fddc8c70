import json
import os
import pathlib
import subprocess
import sys

import gantry

HERE = pathlib.Path(__file__).resolve().parent
MATRIX = HERE.parent / "matrix.py"


def matrix(*args, **env):
    return subprocess.run([sys.executable, str(MATRIX), *args], capture_output=True, text=True, timeout=90,
                          env={**os.environ, **env})


def test_matrix_enqueue_then_work(admin, queue):
    enqueued = matrix("enqueue", "12", queue)
    assert enqueued.returncode == 0, enqueued.stderr
    ids = enqueued.stdout.split()
    assert len(ids) == 12 and len(set(ids)) == 12
    for n, job_id in enumerate(ids):
        job = admin.job(job_id)
        assert (job["type"], job["args"], job["queue"], job["state"]) == (
            "matrix.echo", {"from": "python", "n": n}, queue, "available")

    worked = matrix("work", "12", queue)
    assert worked.returncode == 0, worked.stderr
    for n, job_id in enumerate(ids):
        job = admin.job(job_id)
        assert job["state"] == "completed" and job["result"] == {"by": "python", "from": "python", "n": n}


def test_matrix_works_jobs_from_other_languages(admin, queue):
    ids = admin.enqueue_batch([{"type": "matrix.echo", "args": {"from": "node", "n": n}, "queue": queue}
                               for n in range(3)])
    worked = matrix("work", "3", queue)
    assert worked.returncode == 0, worked.stderr
    assert [admin.job(job_id)["result"] for job_id in ids] == [{"by": "python", "from": "node", "n": n}
                                                               for n in range(3)]


def test_matrix_work_gives_up_and_usage(queue):
    timed_out = matrix("work", "2", queue, MATRIX_DEADLINE_S="1")
    assert timed_out.returncode == 1 and "0 of 2" in timed_out.stderr
    assert matrix("dance", "1", queue).returncode == 64
    assert matrix("enqueue", "0", queue).stdout == ""


def test_matrix_step_runs_one_step_of_an_operation(admin, queue):
    started = admin.operations_start("matrix-" + queue, {"main": ["matrix.step", "matrix.step"]},
                                     {"trail": ["node"]}, queue=queue)
    stepped = matrix("step", queue)
    assert stepped.returncode == 0, stepped.stderr
    operation = admin.operations_get(started["id"])
    assert operation["globals"] == {"trail": ["node", "python"]}
    assert [s["state"] for s in operation["steps"]] == ["completed", "pending"]  # the second one is left alone
    [second] = admin.reserve(queue)
    assert second["operation"]["index"] == 1
    admin.ack(second["id"])

    started = admin.operations_start("matrix-" + queue, {"main": ["matrix.step"]}, queue=queue)
    assert matrix("step", queue).returncode == 0
    operation = admin.operations_get(started["id"])
    assert (operation["state"], operation["globals"]) == ("completed", {"trail": ["python"]})


def test_matrix_step_gives_up(queue):
    timed_out = matrix("step", queue, MATRIX_DEADLINE_S="1")
    assert timed_out.returncode == 1 and "no matrix.step step completed" in timed_out.stderr
    assert matrix("step").returncode == 64


def test_error_table_matches_the_protocol():
    spec = json.loads((HERE.parents[2] / "proto-json" / "errors.json").read_text())
    assert {e["code"]: (e["name"], e["retryable"]) for e in spec} == gantry.ERRORS
