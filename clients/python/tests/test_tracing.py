"""W3C trace context in a job's meta: set at enqueue, continued by the worker (a child span on the first
attempt, a new trace linked to the enqueue's on a retry). With a TraceProvider, and with OpenTelemetry when it
is installed (those tests are skipped without it)."""
import asyncio
import contextlib
import importlib.util
import sys
import threading

import pytest

import gantry
from conftest import wait_for
from gantry.aio import AsyncClient

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "congo=t61rcWkgMzE"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
OPENTELEMETRY = importlib.util.find_spec("opentelemetry") is not None and \
    importlib.util.find_spec("opentelemetry.sdk") is not None


def test_enqueue_puts_the_current_trace_context_in_meta(url, admin, queue, caplog):
    current = [{"traceparent": TRACEPARENT, "tracestate": TRACESTATE}]
    tracing = gantry.TraceProvider(current=lambda: current[0])
    client = gantry.Client(url, tracing=tracing)
    meta_of = lambda job_id: admin.job(job_id)["meta"]  # noqa: E731

    assert meta_of(client.enqueue("py.t", queue=queue)) == {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    own = {"traceparent": OTHER, "k": 1}
    assert meta_of(client.enqueue("py.t", queue=queue, meta=own)) == {"traceparent": OTHER, "k": 1}  # kept
    assert own == {"traceparent": OTHER, "k": 1}
    ids = client.enqueue_batch([{"type": "py.t", "queue": queue}, {"type": "py.t", "queue": queue, "meta": {"a": 1}}])
    assert [meta_of(id) for id in ids] == [{"traceparent": TRACEPARENT, "tracestate": TRACESTATE},
                                           {"a": 1, "traceparent": TRACEPARENT, "tracestate": TRACESTATE}]
    current[0] = {"traceparent": TRACEPARENT, "tracestate": ""}  # an empty tracestate is left out
    assert meta_of(client.enqueue("py.t", queue=queue)) == {"traceparent": TRACEPARENT}
    current[0] = None  # no current span
    assert meta_of(client.enqueue("py.t", queue=queue)) == {}

    def broken():
        raise RuntimeError("tracer bug")
    with caplog.at_level("WARNING", logger="gantry.tracing"):
        job_id = gantry.Client(url, tracing=gantry.TraceProvider(current=broken)).enqueue("py.t", queue=queue)
    assert meta_of(job_id) == {} and "tracer bug" in caplog.text  # the enqueue goes on, untraced
    assert meta_of(gantry.Client(url, tracing=False).enqueue("py.t", queue=queue)) == {}
    with pytest.raises(TypeError, match="tracing="):
        gantry.Client(url, tracing="opentelemetry")

    async def main():
        async with AsyncClient(url, tracing=tracing) as client:
            current[0] = {"traceparent": TRACEPARENT}
            return [await client.enqueue("py.t", queue=queue), *await client.enqueue_batch([{"type": "py.t",
                                                                                             "queue": queue}])]
    assert [meta_of(id) for id in asyncio.run(main())] == [{"traceparent": TRACEPARENT}] * 2


def fail_once(seen):
    def handler(job):
        seen(job)
        if job.attempt == 1:
            raise RuntimeError("the first attempt fails")
        return "second time lucky"
    return handler


def retry_when_dead(admin, job_id):
    """The job fails its only attempt; jobs.retry gives it a second at once (no backoff to wait out)."""
    wait_for(lambda: admin.job(job_id)["state"] == "dead", what="the first attempt to fail")
    admin.jobs_retry(job_id)
    wait_for(lambda: admin.job(job_id)["state"] == "completed", what="the second attempt")
    assert admin.job(job_id)["attempt"] == 2


def test_worker_continues_the_trace_child_then_link(url, admin, queue, start_worker):
    current_span = threading.local()
    started, failed, seen = [], [], []

    @contextlib.contextmanager
    def start_job_span(job, traceparent, tracestate, link):
        started.append((job.attempt, traceparent, tracestate, link))
        current_span.value = {"parent": traceparent, "link": link}
        try:
            yield current_span.value
        finally:
            current_span.value = None

    class Recording(gantry.TraceProvider):
        def job_failed(self, span, error):
            failed.append((dict(span), str(error)))

    tracing = Recording(current=lambda: {"traceparent": TRACEPARENT, "tracestate": TRACESTATE},
                        start_job_span=start_job_span)
    job_id = gantry.Client(url, tracing=tracing).enqueue("py.traced", queue=queue, max_attempts=1)
    worker = gantry.Worker(url, [queue], poll_ms=300, tracing=tracing,
                           handlers={"py.traced": fail_once(lambda job: seen.append(
                               (job.attempt, dict(current_span.value))))})
    running = start_worker(worker)
    retry_when_dead(admin, job_id)
    worker.shutdown()
    running.join(5)
    assert started == [(1, TRACEPARENT, TRACESTATE, False), (2, TRACEPARENT, TRACESTATE, True)]
    assert seen == [(1, {"parent": TRACEPARENT, "link": False}), (2, {"parent": TRACEPARENT, "link": True})]
    assert failed == [({"parent": TRACEPARENT, "link": False}, "the first attempt fails")]


def test_without_opentelemetry_nothing_is_traced_and_nothing_fails(url, admin, queue, start_worker, monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed (import fails)
    monkeypatch.setattr(gantry.tracing, "_default", None)
    client = gantry.Client(url)
    assert client.tracer is None
    job_id = client.enqueue("py.plain", queue=queue, meta={"traceparent": TRACEPARENT})
    worker = gantry.Worker(url, [queue], poll_ms=300, handlers={"py.plain": lambda job: job.meta})
    running = start_worker(worker)
    wait_for(lambda: admin.job(job_id)["state"] == "completed", what="the job")
    worker.shutdown()
    running.join(5)
    assert worker.tracer is None and admin.job(job_id)["result"] == {"traceparent": TRACEPARENT}


@pytest.mark.skipif(not OPENTELEMETRY, reason="opentelemetry-api and -sdk are not installed (optional)")
def test_opentelemetry_child_span_then_linked_trace(url, admin, queue, start_worker, monkeypatch):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setattr(gantry.tracing, "_default", None)  # decided afresh, as in a new process
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # not set globally: the worker is given it
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    client = gantry.Client(url)
    assert isinstance(client.tracer, gantry.tracing.OpenTelemetry)  # the default, since it is installed
    with provider.get_tracer("test").start_as_current_span("checkout") as enqueue_span:
        job_id = client.enqueue("py.otel", queue=queue, max_attempts=1)
    origin = enqueue_span.get_span_context()
    traceparent = f"00-{origin.trace_id:032x}-{origin.span_id:016x}-{int(origin.trace_flags):02x}"
    assert admin.job(job_id)["meta"] == {"traceparent": traceparent}
    assert "traceparent" not in admin.job(client.enqueue("py.otel-none", queue=queue + "-x"))["meta"]  # no span

    seen = []

    def saw(job):
        span = trace.get_current_span()
        seen.append((job.attempt, span.get_span_context(), span.parent, list(span.links)))

    worker = gantry.Worker(url, [queue], poll_ms=300, tracing=gantry.tracing.OpenTelemetry(tracer_provider=provider),
                           handlers={"py.otel": fail_once(saw)})
    running = start_worker(worker)
    retry_when_dead(admin, job_id)
    worker.shutdown()
    running.join(5)

    def job_spans():
        spans = [span for span in exporter.get_finished_spans() if span.name == "process py.otel"]
        return spans if len(spans) == 2 else None
    spans = wait_for(job_spans, what="both job spans to end")  # a span ends after its job's ack or nack
    first, second = sorted(spans, key=lambda span: span.attributes["gantry.job.attempt"])
    # Attempt 1: a child of the enqueue's span, in its trace.
    assert (first.parent.span_id, first.context.trace_id) == (origin.span_id, origin.trace_id)
    assert first.kind == trace.SpanKind.CONSUMER and first.status.status_code == trace.StatusCode.ERROR
    assert (first.attributes["messaging.destination.name"], first.attributes["messaging.message.id"]) == (queue, job_id)
    assert any(event.name == "exception" for event in first.events)
    # Attempt 2: a new trace, linked to the enqueue's span.
    assert second.parent is None and second.context.trace_id != origin.trace_id
    assert [(link.context.trace_id, link.context.span_id) for link in second.links] == [(origin.trace_id,
                                                                                         origin.span_id)]
    assert second.status.status_code != trace.StatusCode.ERROR
    # The handler ran inside those spans.
    assert [(attempt, context.span_id) for attempt, context, _, _ in seen] == [(1, first.context.span_id),
                                                                               (2, second.context.span_id)]
    assert seen[0][2].span_id == origin.span_id and seen[1][3][0].context.span_id == origin.span_id
