"""W3C Trace Context across the broker: an enqueue puts the current span's ``traceparent`` (and ``tracestate``) in
the job's ``meta``; the worker runs the job inside a span of its own, a child of that one on the first attempt
and, on a retry, the root of a new trace linked to it.

OpenTelemetry is used when it is installed (``pip install opentelemetry-api``; it is never required, and is
imported on first use). Any other tracer plugs in as a ``TraceProvider``:

```python
tracing = gantry.TraceProvider(current=lambda: {"traceparent": my_tracer.current_traceparent()},
                               start_job_span=lambda job, traceparent, tracestate, link: my_tracer.span(...))
client = gantry.Client(url, tracing=tracing)
worker = gantry.Worker(url, ["mail"], tracing=tracing)
```
"""
import contextlib
import logging
import threading

log = logging.getLogger("gantry.tracing")

#: The keys of a job's meta that carry the trace context.
META_KEYS = ("traceparent", "tracestate")


class TraceProvider:
    """Where a client finds the trace context to send and how a worker starts a job's span. Give it functions,
    or subclass it:

    - ``current()``: the current trace context, ``{"traceparent": ..., "tracestate": ...}`` (``tracestate``
      optional), or None when there is no current span. Called for each enqueue, inside its ``around_enqueue``
      hooks; keys the caller put in ``meta`` are kept.
    - ``start_job_span(job, traceparent, tracestate, link)``: a context manager the worker runs the job in (its
      hooks, its handler and its ack), or None. ``traceparent``/``tracestate`` are the job's meta's (None when
      it has none); ``link`` is true on a retry (``job.attempt > 1``), when the span should start a new trace
      linked to ``traceparent`` rather than be its child.
    - ``job_failed(span, error)``: told of the job's error, with what ``start_job_span``'s context manager gave
      (for subclasses; the default does nothing).

    A provider that raises never fails an enqueue or a job: the error is logged and the job goes on untraced.
    """

    def __init__(self, current=None, start_job_span=None):
        self._current = current
        self._start_job_span = start_job_span

    def current(self):
        return self._current() if self._current is not None else None

    def start_job_span(self, job, traceparent, tracestate, link):
        if self._start_job_span is None:
            return None
        return self._start_job_span(job, traceparent, tracestate, link)

    def job_failed(self, span, error):
        pass


class OpenTelemetry(TraceProvider):
    """The provider for OpenTelemetry (``opentelemetry-api``; the SDK, or another implementation, records the
    spans). The trace context is written and read in W3C form whatever global propagator is set, as the meta
    keys are W3C's. A job's span is named ``process <type>``, of kind CONSUMER, with the messaging attributes
    (system ``gantry``, the queue, the job's id) and ``gantry.job.type`` / ``gantry.job.attempt``; a failed job
    records its exception and an ERROR status. ``tracer_provider``: default the global one."""

    def __init__(self, tracer_provider=None):
        super().__init__()
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
        from opentelemetry.trace.status import Status, StatusCode

        from . import __version__
        self._trace, self._empty, self._status = trace, Context, (Status, StatusCode)
        self._propagator = TraceContextTextMapPropagator()
        self._tracer = trace.get_tracer("gantry", __version__, tracer_provider=tracer_provider)

    def current(self):
        carrier = {}
        self._propagator.inject(carrier)  # writes nothing when no span is current
        return carrier or None

    @contextlib.contextmanager
    def start_job_span(self, job, traceparent, tracestate, link):
        trace, links, parent = self._trace, (), self._empty()  # an empty context: a new trace
        if traceparent:
            carrier = {"traceparent": traceparent, **({"tracestate": tracestate} if tracestate else {})}
            extracted = self._propagator.extract(carrier)
            remote = trace.get_current_span(extracted).get_span_context()
            if remote.is_valid and link:
                links = [trace.Link(remote, {"gantry.link": "enqueue"})]
            elif remote.is_valid:
                parent = extracted
        attributes = {"messaging.system": "gantry", "messaging.operation.type": "process",
                      "messaging.destination.name": job.queue or "", "messaging.message.id": str(job.id),
                      "gantry.job.type": job.type or "", "gantry.job.attempt": job.attempt or 0}
        with self._tracer.start_as_current_span(f"process {job.type}", context=parent,
                                                kind=trace.SpanKind.CONSUMER, links=links,
                                                attributes=attributes) as span:
            yield span

    def job_failed(self, span, error):
        Status, StatusCode = self._status
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


_default = None
_default_lock = threading.Lock()
_UNSET = object()


def default_provider():
    """``OpenTelemetry()`` when ``opentelemetry`` can be imported, else None; decided once, on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                try:
                    _default = OpenTelemetry()
                except ImportError:
                    _default = _UNSET
    return None if _default is _UNSET else _default


def resolve(tracing):
    """A client's or worker's ``tracing=``: None means OpenTelemetry when installed, False none at all."""
    if tracing is None:
        return default_provider()
    if tracing is False:
        return None
    if not (callable(getattr(tracing, "current", None)) and callable(getattr(tracing, "start_job_span", None))):
        raise TypeError(f"tracing= takes a gantry.TraceProvider, None (OpenTelemetry when installed) or False "
                        f"(got {tracing!r})")
    return tracing


def inject(provider, jobs):
    """Puts the current trace context in each job's meta (a new dict: the caller's is not changed), keeping
    the keys the caller set."""
    try:
        context = provider.current()
    except Exception:
        log.warning("gantry: the trace provider's current() raised; enqueueing without a trace context",
                    exc_info=True)
        return
    if not isinstance(context, dict) or not isinstance(context.get("traceparent"), str) \
            or not context["traceparent"]:
        return
    for job in jobs:
        meta = job.get("meta")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict) or "traceparent" in meta:
            continue  # the caller's own context (or a meta the broker will refuse anyway)
        added = {key: context[key] for key in META_KEYS
                 if isinstance(context.get(key), str) and context[key] and key not in meta}
        job["meta"] = {**meta, **added}


def job_context(job):
    """The job's (traceparent, tracestate) from its meta, each None when absent."""
    meta = job.meta if isinstance(job.meta, dict) else {}
    return tuple(meta.get(key) if isinstance(meta.get(key), str) and meta.get(key) else None for key in META_KEYS)


@contextlib.contextmanager
def job_span(provider, job):
    """Runs the body inside the provider's span for ``job`` (yields what its context manager gives, else None).
    A provider that fails to start a span is logged; the job runs untraced."""
    if provider is None:
        yield None
        return
    traceparent, tracestate = job_context(job)
    with contextlib.ExitStack() as stack:
        span = None
        try:
            manager = provider.start_job_span(job, traceparent, tracestate,
                                              bool(traceparent) and (job.attempt or 1) > 1)
            if manager is not None:
                span = stack.enter_context(manager)
        except Exception:
            log.warning("gantry: the trace provider could not start job %s's span; running it untraced", job.id,
                        exc_info=True)
        yield span


def job_failed(provider, span, error):
    if provider is None:
        return
    try:
        provider.job_failed(span, error)
    except Exception:
        log.warning("gantry: the trace provider's job_failed raised", exc_info=True)
