"""The asyncio client: the same methods as ``gantry.Client``, as coroutines, over one pipelined connection.

```python
async with gantry.aio.AsyncClient("127.0.0.1:7440", name="billing") as gantry_client:
    job_id = await gantry_client.enqueue("email.send", {"to": "ana@example.com"}, queue="mail")
```
"""
import asyncio
import inspect
import itertools
import json
import logging
import socket

from . import _api
from . import tracing as _tracing
from .errors import STORAGE_UNAVAILABLE, ConnectionLost, RPCError
from .hooks import Hooks

log = logging.getLogger("gantry")

#: Longest line read from the broker (a reserve of many large jobs makes long lines).
MAX_LINE = 1 << 30


class _Connection:
    def __init__(self, reader, writer, on_notification, address):
        self.reader = reader
        self.writer = writer
        self.address = address
        self.on_notification = on_notification
        self.pending = {}
        self.closed = False
        self.reason = None
        #: The exception that ended the reader (a TLS alert, a reset), kept as the cause of ConnectionLost.
        self.cause = None
        #: Whether the broker answered in TLS although this connection is plain.
        self.answered_in_tls = False
        self.write_lock = asyncio.Lock()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def request(self, request_id, line, timeout):
        if self.closed:
            raise self._lost()
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            try:
                async with self.write_lock:
                    self.writer.write(line)
                    await self.writer.drain()
            except OSError as error:
                # Why the broker hung up (a TLS alert, its payload_too_large answer) is on its way to the reader:
                # wait for it a moment, so the caller learns that rather than just that sending failed.
                await asyncio.wait({self.task}, timeout=1.0)
                if self.closed:
                    raise self._lost()  # caused by what ended the reader
                raise ConnectionLost(f"could not send to the broker at {self.address}: {error}") from error
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no answer from the broker at {self.address} within {timeout:.1f} s") from None
        finally:
            self.pending.pop(request_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: an answer nobody awaits any more is no "never retrieved" warning

    async def _read(self):
        reason = "the broker closed the connection"
        try:
            while True:
                raw = await self.reader.readline()
                if not raw:
                    break
                if raw.strip():
                    self._dispatch(raw)
        except asyncio.CancelledError:
            reason = "closed by the client"
        except (OSError, ValueError, asyncio.LimitOverrunError) as error:
            reason = f"the connection failed: {error}"
            self.cause = error
        finally:
            self.close(reason)

    def _dispatch(self, raw):
        try:
            message = json.loads(raw)
        except ValueError:
            if _api.speaks_tls(raw) and self.writer.get_extra_info("sslcontext") is None:
                self.answered_in_tls = True
                return
            log.warning("gantry: ignoring a line from the broker that is not JSON: %.200r", raw)
            return
        if isinstance(message, dict) and "id" not in message and isinstance(message.get("method"), str):
            if self.on_notification is not None:
                self.on_notification(message)
            return
        if isinstance(message, dict) and message.get("id") is not None:
            future = self.pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)
                return
        log.debug("gantry: a response nobody waits for: %.300r", raw)

    def _lost(self):
        """The ConnectionLost for calls on this closed connection, caused by what ended the reader."""
        lost = ConnectionLost(f"lost the connection to the broker at {self.address}: {self.reason}")
        lost.__cause__ = self.cause
        return lost

    def close(self, reason="closed by the client"):
        if self.closed:
            return
        self.closed = True
        self.reason = reason
        self.writer.close()
        waiting, self.pending = list(self.pending.values()), {}
        for future in waiting:
            if not future.done():
                future.set_exception(self._lost())
        if self.task is not asyncio.current_task():
            self.task.cancel()


class AsyncClient(_api._Api):
    """``gantry.Client`` over asyncio: one connection shared by every task, a reader task that resolves each
    request's future by id, ``hello`` first on each (re)connection, reconnect on the next call after a drop,
    and the same transparent resend of ``storage_unavailable`` with nothing applied. Every method of
    ``gantry.Client`` is here as a coroutine, and the same keywords: ``token``, ``tls``, ``ca_file``,
    ``cert_file``, ``key_file``, ``hooks``, ``tracing`` (see ``gantry.Client``). ``on_notification(method,
    params)`` may be a plain function or a coroutine function (run as a task), and so may hooks (an
    ``around_enqueue`` hook then awaits ``next()``). Use it from one event loop."""

    def __init__(self, url=None, name="gantry-python", *, token=None, tls=None, ca_file=None, cert_file=None,
                 key_file=None, worker=None, on_notification=None, timeout=60.0, patience=30.0, connect_timeout=10.0,
                 hooks=None, tracing=None):
        self._endpoint = _api.endpoint(url, token=token, tls=tls, ca_file=ca_file, cert_file=cert_file,
                                       key_file=key_file)
        self.host, self.port = self._endpoint.host, self._endpoint.port
        self.tls = self._endpoint.tls
        self.name = name
        self.worker = worker
        self.on_notification = on_notification
        self.timeout = timeout
        self.patience = patience
        self.connect_timeout = connect_timeout
        self.hooks = hooks if isinstance(hooks, Hooks) else Hooks(hooks)
        self._tracing_option = tracing
        if tracing is not None:
            _tracing.resolve(tracing)
        self._tracer_resolved = False
        self._tracer = None
        self.session_id = None
        self.connections_opened = 0
        self._ids = itertools.count(1)
        self._conn = None
        self._connect_lock = None
        self._tasks = set()

    def __repr__(self):
        return f"<gantry.aio.AsyncClient {self.host}:{self.port}{' tls' if self.tls else ''} {self.name!r}>"

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            try:
                await conn.writer.wait_closed()
            except OSError:
                pass

    async def call(self, method, params=None, *, timeout=None):
        """Calls any method; returns its ``result`` or raises ``RPCError`` (see ``gantry.Client.call``)."""
        if method in _api.ENQUEUE_METHODS and (self.hooks or self.tracer is not None):
            request = _api.enqueue_request(method, params)
            if request is not None:
                return await self._enqueue(method, timeout, *request)
        return await self._call(method, params, timeout)

    @property
    def tracer(self):
        """The ``TraceProvider`` in use (None: no tracing), decided on first use."""
        if not self._tracer_resolved:
            self._tracer = _tracing.resolve(self._tracing_option)
            self._tracer_resolved = True
        return self._tracer

    async def _enqueue(self, method, timeout, params, jobs, subject):
        """``gantry.Client._enqueue``, awaiting the hooks that are coroutine functions."""
        hooks, tracer, answers = self.hooks, self.tracer, []
        for job in jobs:
            await hooks._arun_before("before_enqueue", job, job=job)
        _api.settle_timestamps(jobs)

        async def send():
            if tracer is not None:
                _tracing.inject(tracer, jobs)
            answers.append(await self._call(method, params, timeout))
            return answers[0]
        try:
            await hooks._arun_around("around_enqueue", subject, send, job=subject)
        except Exception:
            if not answers:
                raise
        for job, answer in zip(jobs, _api.enqueue_answers(method, answers[0], jobs)):
            await hooks._arun_after("after_enqueue", job, answer, job=job)
        return answers[0]

    async def _call(self, method, params, timeout):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        delay = 0.1
        while True:
            try:
                return await self._call_once(method, params, timeout)
            except RPCError as error:
                if not (error.code == STORAGE_UNAVAILABLE and isinstance(error.data, dict)
                        and error.data.get("applied") is False and loop.time() + delay < deadline):
                    raise
                log.info("gantry: the broker cannot reach PostgreSQL; resending %s in %.1f s", method, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _invoke(self, method, params, extract=None, wait_ms=0):
        timeout = None if self.timeout is None else self.timeout + wait_ms / 1000

        async def invoke():
            result = await self.call(method, params, timeout=timeout)
            return extract(result) if extract else result
        return invoke()

    async def _call_once(self, method, params, timeout):
        request_id = next(self._ids)
        line = _api.request_line(request_id, method, params)
        conn = await self._connection()
        return await self._exchange(conn, request_id, line, timeout or self.timeout)

    @staticmethod
    async def _exchange(conn, request_id, line, timeout):
        response = await conn.request(request_id, line, timeout)
        if "error" in response:
            raise RPCError.from_error(response["error"])
        return response.get("result")

    async def _connection(self):
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._conn is None or self._conn.closed:
                self._conn = await self._open()
            return self._conn

    async def _open(self):
        """Connects and says hello, as ``gantry.Client._open`` does: the broker's refusal of ``hello`` and TLS
        failures are raised at once, anything else is retried for ``patience`` seconds."""
        loop = asyncio.get_running_loop()
        address = self._endpoint.address
        deadline = loop.time() + self.patience
        delay = 0.1
        while True:
            try:
                conn = await self._connect(address)
                try:
                    hello_id = next(self._ids)
                    params = _api.hello_params(self.name, self.worker, self._endpoint.token)
                    hello = _api.request_line(hello_id, "hello", params)
                    self.session_id = (await self._exchange(conn, hello_id, hello, self.timeout))["session_id"]
                except BaseException as error:
                    conn.close()
                    if isinstance(error, ConnectionLost) and conn.answered_in_tls:
                        raise _api.plain_to_tls_error(self._endpoint) from None
                    raise
                self.connections_opened += 1
                return conn
            except (OSError, asyncio.TimeoutError) as error:
                failure = _api.tls_failure(error, self._endpoint)
                if failure is not None:
                    raise failure from failure.__cause__
                if loop.time() + delay >= deadline:
                    raise ConnectionLost(f"cannot reach the broker at {address} ({error}); is gantryd running "
                                         f"there?{_api.connection_hint(self._endpoint, error)}") from error
                log.info("gantry: broker at %s unreachable (%s); retrying in %.1f s", address, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _connect(self, address):
        tls = {}
        if self._endpoint.tls:
            tls = {"ssl": self._endpoint.ssl_context, "server_hostname": self.host,
                   "ssl_handshake_timeout": self.connect_timeout}
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=MAX_LINE, **tls), self.connect_timeout)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(reader, writer, self._notified, address)

    def _notified(self, message):
        if self.on_notification is None:
            return
        try:
            outcome = self.on_notification(message["method"], message.get("params"))
            if inspect.isawaitable(outcome):
                task = asyncio.ensure_future(outcome)
                self._tasks.add(task)  # keep a reference until it is done
                task.add_done_callback(self._tasks.discard)
        except Exception:
            log.exception("gantry: the notification callback failed")
