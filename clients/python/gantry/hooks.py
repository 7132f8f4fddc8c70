"""Hooks: the functions an application adds to a client (around its enqueues) and to a worker (around its jobs,
its startup and its shutdown), e.g. to report to an error tracker. The names are proto-json/hooks.json's.

```python
worker = gantry.Worker(url, ["mail"])

@worker.hooks.on_job_failure
def report(job, error):
    sentry_sdk.capture_exception(error)

@worker.hooks.around_job
def timed(job, next):
    with statsd.timer(f"job.{job.type}"):
        return next()
```
"""
import inspect
import logging
import threading
from typing import NamedTuple

from .errors import GantryError

log = logging.getLogger("gantry.hooks")

#: Every hook, in the order they fire (proto-json/hooks.json; a test holds this list to that file).
HOOKS = ("before_enqueue", "around_enqueue", "after_enqueue", "before_job", "around_job", "after_job",
         "on_job_failure", "on_fatal_error", "before_startup", "after_startup", "before_shutdown", "after_shutdown")


class HookError(GantryError):
    """What ``on_fatal_error`` gets when a hook raised: ``hook`` (its name, ``"after_job"``), ``function`` (the
    hook itself) and ``job`` (the ``gantry.Job``, the enqueue's job dict, a batch's list of them for
    ``around_enqueue``, or None); the hook's own error is its ``__cause__`` (so error trackers show both)."""

    def __init__(self, hook, function, error, job=None):
        super().__init__(f"the {hook} hook {describe(function)} raised {type(error).__name__}: {error}")
        self.hook, self.function, self.job = hook, function, job
        self.__cause__ = error


class Outcome(NamedTuple):
    """What ``after_job`` gets besides the job: the handler's ``result``, or the ``error`` it (or a
    ``before_job``/``around_job`` hook) raised."""
    result: object = None
    error: BaseException = None

    @property
    def ok(self):
        return self.error is None


def describe(function):
    return getattr(function, "__qualname__", None) or repr(function)


class Hooks:
    """The hooks of a client or a worker, by name; hooks of one name run in the order they were added.

    Each name is a method that adds a hook and returns it, so it doubles as a decorator
    (``@client.hooks.before_enqueue``); ``on(name, fn)`` does the same with the name as a string, and ``use(obj)``
    adds every method of ``obj`` named after a hook (one object holding an error tracker's hooks). One ``Hooks``
    may be given to several clients and workers (``hooks=``); hooks may be added while they run.

    An error raised by a hook is never swallowed: it reaches the ``on_fatal_error`` hooks as a
    ``gantry.HookError`` (which hook, and its error as ``__cause__``), or the log when there are none; an error
    raised by an ``on_fatal_error`` hook is logged. What it does besides depends on the hook: see each one.
    """

    def __init__(self, hooks=None):
        # Tuples, replaced on each addition, so firing reads them without a lock.
        self._hooks = {name: () for name in HOOKS}
        self._lock = threading.Lock()
        if isinstance(hooks, dict):
            for name, functions in hooks.items():
                for function in functions if isinstance(functions, (list, tuple)) else [functions]:
                    self.on(name, function)
        elif hooks is not None:
            self.use(hooks)

    def __repr__(self):
        added = {name: len(functions) for name, functions in self._hooks.items() if functions}
        return f"<gantry.Hooks {added}>"

    def on(self, name, function=None):
        """Adds ``function`` as a hook ``name`` and returns it; without ``function``, a decorator that does."""
        if name not in self._hooks:
            raise ValueError(f"there is no hook {name!r}; the hooks are {', '.join(HOOKS)}")
        if function is None:
            return lambda function: self.on(name, function)
        if not callable(function):
            raise TypeError(f"a {name} hook must be callable (got {function!r})")
        with self._lock:
            self._hooks[name] += (function,)
        return function

    def use(self, obj):
        """Adds every method of ``obj`` named after a hook (``obj.on_job_failure``...); returns ``obj``."""
        found = [name for name in HOOKS if callable(getattr(obj, name, None))]
        if not found:
            raise ValueError(f"{obj!r} has no method named after a hook ({', '.join(HOOKS)})")
        for name in found:
            self.on(name, getattr(obj, name))
        return obj

    def get(self, name):
        """The hooks ``name``, in the order they run."""
        return self._hooks[name]

    def __bool__(self):
        return any(self._hooks.values())

    # One method per hook (what they get, and what an error they raise does).

    def before_enqueue(self, function):
        """``function(job)``, before each job is sent: ``job`` is the dict of ``enqueue``'s params (``type``,
        ``args``, ``queue``, ``meta``...; a batch's jobs one by one), which it may change. Raising stops the
        enqueue: nothing is sent and the enqueue raises that error."""
        return self.on("before_enqueue", function)

    def around_enqueue(self, function):
        """``function(job, next)``: must call ``next()`` (the request to the broker, once) and return what it
        returns (the broker's answer: ``{"id", ...}``, or ``{"ids": [...]}`` for a batch, whose ``job`` is the
        list of its jobs); the enqueue returns the broker's answer either way. The first added is the outermost.
        Raising before the broker stored the job makes the enqueue raise; once it stored it, the error is only
        reported and the enqueue returns the id."""
        return self.on("around_enqueue", function)

    def after_enqueue(self, function):
        """``function(job, answer)``, once the broker stored the job: ``answer`` is its answer (``{"id": ...}``;
        for each job of a batch, ``{"id": its id}``). Raising changes nothing: the enqueue returns the id."""
        return self.on("after_enqueue", function)

    def before_job(self, function):
        """``function(job)`` (a ``gantry.Job``), before its handler runs. Raising fails the job as a raising
        handler does (the handler does not run; ``on_job_failure`` gets the error; the job is nacked)."""
        return self.on("before_job", function)

    def around_job(self, function):
        """``function(job, next)``: must call ``next()`` (the handler, once) and return what it returns (the job's
        result). The first added is the outermost. An error it raises (not one ``next()`` passed on) fails the
        job as a raising handler does."""
        return self.on("around_job", function)

    def after_job(self, function):
        """``function(job, outcome)``, after the handler returned or raised: ``outcome`` is a ``gantry.Outcome``
        (``result``, ``error``, ``ok``). Before the ack or nack. Raising changes nothing about the job."""
        return self.on("after_job", function)

    def on_job_failure(self, function):
        """``function(job, error)``, when the job failed (its handler, or a ``before_job``/``around_job`` hook,
        raised; or its result is not JSON), before the nack. Not for jobs handed back by a stop. Raising changes
        nothing about the job."""
        return self.on("on_job_failure", function)

    def on_fatal_error(self, function):
        """``function(error)``, for an error outside any job: a ``gantry.HookError`` when a hook raised, or what
        stops a worker (a refused token, a TLS failure) or crashes its loop. An error it raises is logged."""
        return self.on("on_fatal_error", function)

    def before_startup(self, function):
        """``function(worker)``, when ``run()`` starts, before the worker connects. Raising stops the start:
        ``run()`` raises that error."""
        return self.on("before_startup", function)

    def after_startup(self, function):
        """``function(worker)``, once the worker is connected, before its first ``reserve``. Raising changes
        nothing."""
        return self.on("after_startup", function)

    def before_shutdown(self, function):
        """``function(worker)``, when the worker stops reserving (``stop()``, ``shutdown()``, an operator's
        ``worker.stop``, a fatal error), before its running jobs are finished or handed back. Raising changes
        nothing."""
        return self.on("before_shutdown", function)

    def after_shutdown(self, function):
        """``function(worker)``, once the worker has stopped and handed back what it held, as ``run()`` returns.
        Raising changes nothing."""
        return self.on("after_shutdown", function)

    # Firing, for clients and workers.

    def _fatal(self, error):
        """Hands ``error`` to the ``on_fatal_error`` hooks (the log when there are none)."""
        functions = self._hooks["on_fatal_error"]
        if not functions:
            log.error("gantry: %s", error, exc_info=error)
        for function in functions:
            try:
                _not_awaitable(function(error), "on_fatal_error", function)
            except Exception:
                log.exception("gantry: the on_fatal_error hook %s raised while handling %r", describe(function),
                              error)

    def _failed(self, name, function, error, job):
        self._fatal(HookError(name, function, error, job))

    def _run_before(self, name, *args, job=None):
        """Runs the hooks ``name``; the first that raises is reported and its error raised (the rest are
        skipped)."""
        for function in self._hooks[name]:
            try:
                _not_awaitable(function(*args), name, function)
            except Exception as error:
                self._failed(name, function, error, job)
                raise

    def _run_after(self, name, *args, job=None):
        """Runs the hooks ``name``, each one's error reported, none raised."""
        for function in self._hooks[name]:
            try:
                _not_awaitable(function(*args), name, function)
            except Exception as error:
                self._failed(name, function, error, job)

    def _run_around(self, name, subject, innermost, job=None):
        """Returns ``innermost()`` called inside the hooks ``name`` (the first added outermost). An error a hook
        raises itself is reported, then raised on (an error ``next()`` passed up is not the hook's)."""
        step = innermost
        for function in reversed(self._hooks[name]):
            step = self._layer(name, function, subject, step, job)
        return step()

    def _layer(self, name, function, subject, inner, job):
        def step():
            called, passed = [], []

            def next_():
                if called:
                    raise RuntimeError(f"the {name} hook {describe(function)} called next() twice")
                called.append(True)
                try:
                    value = inner()
                except BaseException as error:
                    passed.append(error)
                    raise
                called.append(value)
                return value

            try:
                value = function(subject, next_)
                _not_awaitable(value, name, function)
                if not called:
                    raise RuntimeError(f"the {name} hook {describe(function)} returned without calling next(); an "
                                       "around hook must call it once and return what it returns")
            except Exception as error:
                if not (passed and error is passed[-1]):
                    self._failed(name, function, error, job)
                raise
            # A forgotten ``return`` must not lose the job's result or the enqueue's id.
            return called[-1] if value is None and len(called) == 2 else value
        return step

    # The same for the asyncio client: hooks may be coroutine functions or plain ones.

    async def _afatal(self, error):
        functions = self._hooks["on_fatal_error"]
        if not functions:
            log.error("gantry: %s", error, exc_info=error)
        for function in functions:
            try:
                await _settled(function(error))
            except Exception:
                log.exception("gantry: the on_fatal_error hook %s raised while handling %r", describe(function),
                              error)

    async def _arun_before(self, name, *args, job=None):
        for function in self._hooks[name]:
            try:
                await _settled(function(*args))
            except Exception as error:
                await self._afatal(HookError(name, function, error, job))
                raise

    async def _arun_after(self, name, *args, job=None):
        for function in self._hooks[name]:
            try:
                await _settled(function(*args))
            except Exception as error:
                await self._afatal(HookError(name, function, error, job))

    async def _arun_around(self, name, subject, innermost, job=None):
        step = innermost
        for function in reversed(self._hooks[name]):
            step = self._alayer(name, function, subject, step, job)
        return await step()

    def _alayer(self, name, function, subject, inner, job):
        async def step():
            called, passed = [], []

            async def next_():
                if called:
                    raise RuntimeError(f"the {name} hook {describe(function)} called next() twice")
                called.append(True)
                try:
                    value = await inner()
                except BaseException as error:
                    passed.append(error)
                    raise
                called.append(value)
                return value

            try:
                # A plain function may return next()'s coroutine unawaited: it is awaited here.
                value = await _settled(function(subject, next_))
                if not called:
                    raise RuntimeError(f"the {name} hook {describe(function)} returned without calling next(); an "
                                       "around hook must call it once and return what it returns")
            except Exception as error:
                if not (passed and error is passed[-1]):
                    await self._afatal(HookError(name, function, error, job))
                raise
            return called[-1] if value is None and len(called) == 2 else value
        return step


def _not_awaitable(value, name, function):
    """A coroutine function given to a synchronous client or a worker would never run: say so, as its error."""
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        raise TypeError(f"the {name} hook {describe(function)} is a coroutine function; a gantry.Client or Worker "
                        "calls hooks synchronously (coroutine hooks are for gantry.aio.AsyncClient)")


async def _settled(value):
    return await value if inspect.isawaitable(value) else value
