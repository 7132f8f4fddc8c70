"""The worker runtime: reserve with a long poll, run handlers in threads, ack, nack, extend, obey operators."""
import logging
import threading

from . import _api
from . import tracing as _tracing
from ._acks import AckBatcher
from .client import Client
from .errors import (FORBIDDEN, INVALID_PARAMS, LEASE_LOST, UNAUTHORIZED, ConnectionLost, PermanentError, RPCError,
                     TLSError)
from .hooks import Hooks, Outcome

log = logging.getLogger("gantry.worker")

_RUNNING, _FINISHING, _HANDING_BACK = "running", "finishing", "handing back"
#: Refusals of ``reserve`` that come back the same however often it is sent: the worker stops and raises them.
_FATAL_CODES = (UNAUTHORIZED, FORBIDDEN)


class UnknownJobType(Exception):
    """No handler is registered on this worker for the job's type (the job is nacked, and retried)."""


class StepResult:
    """What a handler of an operation's step may return instead of a plain result: ``set`` (a dict merged into
    the operation's globals when the step is acked), ``jump_to`` (where the operation goes next: a branch,
    ``"refund"``, or a step of one, ``{"branch": "main", "step": "ship"}``) and ``result`` (the job's result).

    ```python
    @worker.handler("charge.card")
    def charge(job):
        charged = payments.charge(job.operation["globals"]["user_id"])
        return gantry.StepResult(set={"charge_id": charged.id}, jump_to=None if charged.ok else "refund")
    ```
    """

    def __init__(self, set=None, jump_to=None, result=None):
        self.set, self.jump_to, self.result = set, jump_to, result

    def __repr__(self):
        return f"StepResult(set={self.set!r}, jump_to={self.jump_to!r}, result={self.result!r})"


class Job:
    """A reserved job, as a handler gets it.

    ``id``, ``type``, ``args``, ``queue``, ``priority``, ``attempt`` (1 = first), ``max_attempts``, ``meta``,
    ``enqueued_at`` and ``lease_expires_at`` are the broker's; ``raw`` is the whole reserved job.
    ``operation`` is, for a step of an operation, where it stands: ``{"id", "name", "branch", "step", "index",
    "globals"}`` (``globals`` as they were when the step was reserved); None for other jobs. Its handler may
    return a ``StepResult`` to change the globals or send the operation to another branch. ``package`` is, for a
    step of a package's execution, ``{"name", "config"}`` (the config that execution runs with: the package's,
    with the overrides it was started with); None for other jobs.

    A Python thread cannot be killed, so a handler that runs long should look, now and then, at
    ``cancel_requested`` (an operator cancelled the job: ``jobs.cancel``), ``stop_requested`` (the worker was
    told to stop and has handed the job back) or simply wait on the ``interrupted`` event, set by either, and
    return or raise early. Whatever it does after ``stop_requested`` is dropped.
    """

    def __init__(self, reserved):
        self.raw = reserved
        self.id = reserved["id"]
        self.type = reserved.get("type")
        self.args = reserved.get("args")
        self.queue = reserved.get("queue")
        self.priority = reserved.get("priority")
        self.attempt = reserved.get("attempt")
        self.max_attempts = reserved.get("max_attempts")
        self.meta = reserved.get("meta") or {}
        self.enqueued_at = reserved.get("enqueued_at")
        self.lease_expires_at = reserved.get("lease_expires_at")
        self.operation = reserved.get("operation")
        self.package = reserved.get("package")
        self.cancel_requested = False
        self.stop_requested = False
        self.lease_lost = False
        self.interrupted = threading.Event()
        self._state = _RUNNING

    def __repr__(self):
        return f"<gantry.Job {self.id} {self.type} attempt {self.attempt}/{self.max_attempts}>"


class Worker:
    """Runs handlers for jobs from ``queues`` (taken in that order), up to ``concurrency`` at once, each in a
    thread of its own.

    A handler is ``fn(job)`` (a ``gantry.Job``); what it returns (any JSON value) is the job's result, sent with
    ``ack``. A step of an operation may return a ``gantry.StepResult`` (globals to set, a branch to jump to), acked
    alone since the broker takes ``set``/``jump_to`` only in an ack of one job. When it raises, the job is nacked
    with the exception's message, class name (``kind``) and traceback lines (``backtrace``); retried with the
    broker's backoff, unless it raised a ``gantry.PermanentError`` (``retry: false``: the job is dead). Jobs that
    finish while an ack is on the way are acked together in the next one (``ack`` with ``ids``: one request, one
    commit); with none on the way, a job is acked at once. Running jobs' leases are extended every third of
    ``lease_ms``; a job an operator cancels meanwhile gets ``job.cancel_requested`` and its eventual nack uses
    ``retry: false`` (its handler cannot be killed; see ``Job``).

    ``url`` and the keywords left over (``token``, ``tls``, ``ca_file``, ``cert_file``, ``key_file``,
    ``timeout``...) are ``gantry.Client``'s. A broker that refuses the token (``unauthorized``), or the token's
    use of ``reserve`` on these queues (``forbidden``), and TLS failures end ``run()`` with that error once
    running jobs are done, rather than retrying forever.

    Operators steer it through the broker: after ``worker.quiet`` it finishes the jobs it holds and reserves
    nothing more, but keeps running until stopped; after ``worker.stop`` it hands back running jobs (nack,
    ``kind: "WorkerStopped"``, ``retry_in_ms: 0``) and ``run()`` returns. Locally, ``stop()`` does the same and
    ``shutdown()`` stops reserving and lets running jobs finish first (e.g. on SIGTERM):
    ``signal.signal(signal.SIGTERM, lambda *_: worker.shutdown())``.

    ``hooks`` (a ``gantry.Hooks`` or a dict; ``worker.hooks`` either way) run around each job (``before_job``,
    ``around_job``, ``after_job``, ``on_job_failure``), its startup and shutdown, and get its fatal errors
    (``on_fatal_error``); see ``gantry.Hooks``. ``tracing`` (a ``gantry.TraceProvider``; None: OpenTelemetry when
    installed; False: none) runs each job inside a span continuing the trace of its enqueue.

    ```python
    worker = gantry.Worker("127.0.0.1:7440", ["critical", "mail"], concurrency=8)

    @worker.handler("email.send")
    def send(job):
        return {"message_id": mailer.send(**job.args)}

    worker.run()
    ```
    """

    def __init__(self, url=None, queues=("default",), concurrency=10, handlers=None, *, id=None,
                 name="gantry-python-worker", lease_ms=60_000, poll_ms=2_000, hooks=None, tracing=None,
                 **client_options):
        queues = [queues] if isinstance(queues, str) else list(queues)
        if not queues:
            raise ValueError("A worker needs at least one queue to reserve from.")
        if concurrency < 1:
            raise ValueError(f"A worker's concurrency must be at least 1 (got {concurrency}).")
        if lease_ms < 1000:
            raise ValueError("A worker's lease must be at least 1000 ms.")
        _api.endpoint(url, **{key: client_options[key] for key in _api.SECURITY_OPTIONS if key in client_options})
        self.url = url
        self.queues = queues
        self.concurrency = concurrency
        self.id = id or _api.default_worker_id()
        self.name = name
        self.lease_ms = lease_ms
        self.poll_ms = poll_ms
        self.client_options = client_options
        #: The hooks (``gantry.Hooks``): ``@worker.hooks.on_job_failure`` adds one.
        self.hooks = hooks if isinstance(hooks, Hooks) else Hooks(hooks)
        self._tracing_option = tracing
        if tracing is not None:
            _tracing.resolve(tracing)  # a wrong value is refused here, not at the first job
        self.tracer = None
        #: Jobs acked / nacked by this worker so far.
        self.completed = 0
        self.failed = 0
        self.client = None
        self._acks = None
        self._handlers = dict(handlers or {})
        self._jobs = {}
        self._cond = threading.Condition(threading.RLock())
        self._stop_event = threading.Event()
        self._done = threading.Event()
        self._quiet = False
        self._handing_back = False
        self._started = False
        self._fatal = None
        self._shutdown_lock = threading.Lock()
        self._shutdown_begun = False

    def handler(self, type):
        """Decorator: ``@worker.handler("email.send")`` registers the function for that job type."""
        def register(fn):
            self.register(type, fn)
            return fn
        return register

    def register(self, type, fn):
        """Registers ``fn(job)`` for a job type (before ``run()``: handlers are announced in ``hello``)."""
        self._handlers[type] = fn

    @property
    def quiet(self):
        """Whether an operator told it to quiet (it reserves nothing more until stopped)."""
        return self._quiet

    @property
    def running_jobs(self):
        with self._cond:
            return [job for job in self._jobs.values() if job._state == _RUNNING]

    def stop(self):
        """Stops reserving and hands running jobs back (for another worker, at once); ``run()`` returns.
        Safe from any thread and from a signal handler."""
        self._handing_back = True
        self._stop_event.set()
        with self._cond:
            self._cond.notify_all()
        if self.client is not None:
            threading.Thread(target=self._hand_back, name="gantry-hand-back", daemon=True).start()

    def _begin_shutdown(self):
        """Runs the ``before_shutdown`` hooks, once, before running jobs are finished or handed back (whichever
        thread gets here first; the others wait for the hooks to be done)."""
        with self._shutdown_lock:
            if self._shutdown_begun:
                return
            self._shutdown_begun = True
            self.hooks._run_after("before_shutdown", self)

    def shutdown(self):
        """Stops reserving; ``run()`` returns once running jobs have finished (acked or nacked)."""
        self._stop_event.set()
        with self._cond:
            self._cond.notify_all()

    def _obey(self, method, params):
        if method == "worker.quiet":
            log.info("gantry worker %s: told to quiet; finishing running jobs, reserving no more", self.id)
            self._quiet = True
        elif method == "worker.stop":
            log.info("gantry worker %s: told to stop; handing back running jobs", self.id)
            self.stop()
        else:
            log.debug("gantry worker %s: ignoring the notification %s", self.id, method)

    def run(self):
        """Works jobs until ``stop()``, ``shutdown()`` or the broker's ``worker.stop``; then returns."""
        if self._started:
            raise RuntimeError("a Worker runs once; make a new one")
        self._started = True
        self.hooks._run_before("before_startup", self)
        self.tracer = _tracing.resolve(self._tracing_option)
        announce = {"id": self.id, "queues": self.queues, "concurrency": self.concurrency,
                    "handlers": [{"type": type} for type in sorted(self._handlers)]}
        self.client = Client(self.url, self.name, worker=announce, on_notification=self._obey, hooks=self.hooks,
                             tracing=self.tracer or False, **self.client_options)
        self._acks = AckBatcher(self.client)
        extender = threading.Thread(target=self._extend_leases, name="gantry-extend", daemon=True)
        extender.start()
        log.info("gantry worker %s: working %s with concurrency %d, handlers %s", self.id, self.queues,
                 self.concurrency, sorted(self._handlers))
        try:
            self._reserve_loop()
            self._begin_shutdown()
            self._drain()
        except Exception as crash:
            self.hooks._fatal(crash)
            raise
        finally:
            self._begin_shutdown()
            self._done.set()
            self.client.close()
            log.info("gantry worker %s: stopped", self.id)
            self.hooks._run_after("after_shutdown", self)
        if self._fatal is not None:
            raise self._fatal

    def _reserve_loop(self):
        batch = max(1, self.concurrency // 4)  # reserve for several free slots at once, not one per finished job
        connected = False
        while not self._stop_event.is_set():
            if self._quiet:
                self._stop_event.wait(0.25)
                continue
            with self._cond:
                while not self._stop_event.is_set() and self.concurrency - len(self._jobs) < batch:
                    self._cond.wait(0.5)
                free = min(1000, self.concurrency - len(self._jobs))
            if self._stop_event.is_set():
                break
            try:
                if not connected:
                    self.client._connection()  # connects (with hello), so after_startup means connected
                    connected = True
                    self.hooks._run_after("after_startup", self)
                # Short polls, so shutdown is noticed promptly; the broker answers at once when a job comes.
                reserved = self.client.reserve(self.queues, max=free, wait_ms=self.poll_ms, lease_ms=self.lease_ms)
            except (RPCError, OSError) as error:
                if isinstance(error, TLSError) or (isinstance(error, RPCError) and error.code in _FATAL_CODES):
                    log.error("gantry worker %s: stopping: %s", self.id, error)
                    self._fatal = error
                    if self.hooks.get("on_fatal_error"):
                        self.hooks._fatal(error)
                    self._stop_event.set()
                    break
                log.warning("gantry worker %s: reserve failed (%s); retrying in 1 s", self.id, error)
                self._stop_event.wait(1.0)
                continue
            for item in reserved:
                job = Job(item)
                with self._cond:
                    self._jobs[job.id] = job
                threading.Thread(target=self._perform, args=(job,), name=f"gantry-job {job.id}", daemon=True).start()

    def _drain(self):
        while True:
            if self._handing_back:
                self._hand_back()
            with self._cond:
                if not self._jobs:
                    return
                self._cond.wait(0.5)

    def _perform(self, job):
        with self._cond:
            if job._state != _RUNNING:
                return
        try:
            with _tracing.job_span(self.tracer, job) as span:
                self._work(job, span)
        except Exception as crash:  # a bug here or in a tracer: reported rather than lost with the thread
            self.hooks._fatal(crash)
        finally:
            with self._cond:
                # A job handed back is the hand-back's to forget, once its nack is sent: until then run() must
                # not return and close the connection under it.
                if job._state != _HANDING_BACK:
                    self._jobs.pop(job.id, None)
                    self._cond.notify_all()

    def _handle(self, job):
        handler = self._handlers.get(job.type)
        if handler is None:
            raise UnknownJobType(f"no handler for job type {job.type!r} on this worker (it has "
                                 f"{sorted(self._handlers)})")
        return handler(job)

    def _work(self, job, span):
        error = result = None
        refused_step = False
        hooks = self.hooks
        try:
            # A before_job or around_job hook that raises fails the job as its handler raising would.
            hooks._run_before("before_job", job, job=job)
            result = hooks._run_around("around_job", job, lambda: self._handle(job), job=job)
        except Exception as raised:
            error = raised
        hooks._run_after("after_job", job, Outcome(result, error), job=job)
        with self._cond:
            if job._state != _RUNNING:
                log.info("gantry worker %s: job %s finished after it was handed back; its outcome is dropped",
                         self.id, job.id)
                return
            job._state = _FINISHING
        try:
            if error is None:
                try:
                    answer = self._ack(job, result)
                except (TypeError, ValueError) as encoding:  # the result is not JSON
                    error = encoding
                except RPCError as refused:
                    # A set/jump_to the broker refuses (an unknown branch, a job that is no step) fails the job for
                    # good: the same code would be refused again. Its operation fails there; operations.retry
                    # resumes it once the step is fixed.
                    if not (isinstance(result, StepResult) and refused.code == INVALID_PARAMS):
                        raise
                    error = refused
                    refused_step = True
                else:
                    with self._cond:
                        self.completed += 1
                    if answer.get("cancel_requested"):
                        log.info("gantry worker %s: job %s completed although an operator asked to cancel it",
                                 self.id, job.id)
            if error is not None:
                _tracing.job_failed(self.tracer, span, error)
                hooks._run_after("on_job_failure", job, error, job=job)
                permanent = isinstance(error, PermanentError) or job.cancel_requested or refused_step
                answer = self.client.nack(job.id, error, retry=False if permanent else None)
                with self._cond:
                    self.failed += 1
                log.warning("gantry worker %s: job %s (%s) failed: %r; now %s", self.id, job.id, job.type, error,
                            answer.get("state"))
        except RPCError as refused:
            if refused.code == LEASE_LOST:
                log.warning("gantry worker %s: lost the lease on job %s; it was put back and may run again",
                            self.id, job.id)
            else:
                log.warning("gantry worker %s: the broker refused the outcome of job %s: %s", self.id, job.id,
                            refused)
        except OSError as lost:
            log.warning("gantry worker %s: could not report job %s (%s); the broker puts it back when its lease "
                        "ends", self.id, job.id, lost)

    def _ack(self, job, result):
        if not isinstance(result, StepResult):
            return self._acks.ack(job.id, result)  # together with jobs finishing meanwhile
        if result.set is None and result.jump_to is None:
            return self._acks.ack(job.id, result.result)
        # The broker refuses set/jump_to in an ack with ``ids``, so this one cannot join the others.
        return self.client.ack(job.id, result.result, set=result.set, jump_to=result.jump_to)

    def _hand_back(self):
        self._begin_shutdown()
        with self._cond:
            jobs = [job for job in self._jobs.values() if job._state == _RUNNING]
            for job in jobs:
                job._state = _HANDING_BACK
                job.stop_requested = True
                job.interrupted.set()
        for job in jobs:
            try:
                self.client.nack(job.id, "the worker was told to stop and handed the job back",
                                 kind="WorkerStopped", retry=True, retry_in_ms=0)
                log.info("gantry worker %s: handed back job %s", self.id, job.id)
            except (RPCError, OSError) as error:
                log.warning("gantry worker %s: could not hand back job %s (%s)", self.id, job.id, error)
            finally:
                with self._cond:
                    self._jobs.pop(job.id, None)
                    self._cond.notify_all()

    def _extend_leases(self):
        interval = self.lease_ms / 3000
        while not self._done.wait(interval):
            with self._cond:
                ids = [job.id for job in self._jobs.values() if job._state == _RUNNING]
            if not ids:
                continue
            try:
                answer = self.client.extend(ids, lease_ms=self.lease_ms)
            except (RPCError, OSError) as error:
                log.warning("gantry worker %s: extend failed (%s)", self.id, error)
                continue
            with self._cond:
                for lease in answer.get("leases", []):
                    job = self._jobs.get(lease.get("id"))
                    if job is not None and lease.get("cancel_requested") and not job.cancel_requested:
                        log.info("gantry worker %s: an operator cancelled job %s while it ran", self.id, job.id)
                        job.cancel_requested = True
                        job.interrupted.set()
                for lost in answer.get("lost", []):
                    job = self._jobs.get(lost)
                    if job is not None and not job.lease_lost:
                        log.warning("gantry worker %s: lost the lease on running job %s; it may run again "
                                    "elsewhere", self.id, lost)
                        job.lease_lost = True
