"""The synchronous client: one pipelined TCP (or TLS) connection shared by every thread that uses the client."""
import concurrent.futures
import io
import itertools
import json
import logging
import queue
import select
import socket
import ssl
import threading
import time

from . import _api
from . import tracing as _tracing
from .errors import STORAGE_UNAVAILABLE, ConnectionLost, RPCError
from .hooks import Hooks

log = logging.getLogger("gantry")

#: Returned by ``_next_message`` once the broker has closed the connection.
CLOSED = None


class _TLSSocket:
    """A TLS socket shared by the reader thread and the writing threads.

    OpenSSL must not be entered by two threads at once on one connection (a read and a write at the same time
    corrupt its state), so every call into it takes ``lock``, and none blocks: the socket is non-blocking, and
    waiting for the network is done in ``poll``/``select`` with the lock released. A long read never holds up a
    write, nor the other way round. It offers what ``_Connection`` uses: ``sendall``, ``makefile("rb")``,
    ``shutdown`` and ``close``.
    """

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = False
        sock.setblocking(False)

    def sendall(self, data):
        view = memoryview(data).cast("B")
        while view:
            with self.lock:
                if self.closed:
                    raise ConnectionResetError("the connection is closed")
                try:
                    sent = self.sock.send(view)
                except ssl.SSLWantWriteError:
                    sent, readable = 0, False
                except ssl.SSLWantReadError:
                    sent, readable = 0, True
            view = view[sent:]
            if not sent:  # OpenSSL wants the same bytes again once the socket can take them
                self._wait(readable)

    def recv_into(self, buffer):
        while True:
            with self.lock:
                if self.closed:
                    return 0
                try:
                    return self.sock.recv_into(buffer)
                except ssl.SSLWantReadError:
                    readable = True
                except ssl.SSLWantWriteError:
                    readable = False
                except ssl.SSLZeroReturnError:  # the broker's close_notify
                    return 0
            self._wait(readable)

    def _wait(self, readable):
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(self.sock, select.POLLIN if readable else select.POLLOUT)
                poller.poll()
            else:
                select.select([self.sock] if readable else [], [] if readable else [self.sock], [])
        except (OSError, ValueError):  # closed meanwhile: the caller's next try sees ``closed``
            pass

    def makefile(self, mode="rb"):
        return io.BufferedReader(_TLSReader(self), 64 * 1024)

    def shutdown(self, how):
        with self.lock:
            self.closed = True
            try:
                self.sock.unwrap()  # sends close_notify; the broker's answer is not waited for
            except (OSError, ValueError):
                pass
        socket.socket.shutdown(self.sock, how)  # wakes the reader, whose next read sees ``closed``

    def close(self):
        with self.lock:
            self.closed = True
        self.sock.close()


class _TLSReader(io.RawIOBase):
    def __init__(self, tls):
        self.tls = tls

    def readable(self):
        return True

    def readinto(self, buffer):
        return self.tls.recv_into(buffer)


class _Connection:
    """One TCP connection: writes lines, and a reader thread hands each response to the request with its id.

    Broker notifications go to ``on_notification``. Only in raw mode (the conformance replay), every message no
    call waits for (``id`` null, batches, answers to raw lines, notifications) is also kept in ``unclaimed``.
    """

    def __init__(self, sock, on_notification, address):
        self.sock = sock
        self.address = address
        self.on_notification = on_notification
        self.pending = {}
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.closed = False
        self.reason = None
        #: The exception that ended the reader (a TLS alert, a reset), kept as the cause of ConnectionLost.
        self.cause = None
        #: Whether the broker answered in TLS although this connection is plain.
        self.answered_in_tls = False
        self.unclaimed = None
        self.last_orphan_error = None
        self.reader = threading.Thread(target=self._read, name=f"gantry-reader {address}", daemon=True)
        self.reader.start()

    def request(self, request_id, line, timeout):
        future = concurrent.futures.Future()
        with self.lock:
            if self.closed:
                raise self._lost()
            self.pending[request_id] = future
        try:
            self._write_request(line)
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no answer from the broker at {self.address} within {timeout:.1f} s") from None
        finally:
            with self.lock:
                self.pending.pop(request_id, None)

    def _write_request(self, line):
        try:
            self.write(line)
        except ConnectionLost:
            # Why the broker hung up (a TLS alert, its payload_too_large answer) is on its way to the reader:
            # wait for it a moment, so the caller learns that rather than just that sending failed.
            self.reader.join(1.0)
            if not self.closed:
                raise
            raise self._lost()  # caused by what ended the reader

    def write(self, data):
        try:
            with self.write_lock:
                self.sock.sendall(data)
        except OSError as error:
            # The peer closed or reset the connection: the reader thread sees it too, reads what the broker
            # sent before (e.g. its payload_too_large answer), and then fails every waiting call.
            raise ConnectionLost(f"could not send to the broker at {self.address}: {error}") from error

    def _read(self):
        reason = "the broker closed the connection"
        stream = self.sock.makefile("rb")
        try:
            for raw in stream:
                if raw.strip():
                    self._dispatch(raw)
        except (OSError, ValueError) as error:
            reason = f"the connection failed: {error}"
            self.cause = error
        finally:
            self.close(reason)
            stream.close()

    def _dispatch(self, raw):
        try:
            message = json.loads(raw)
        except ValueError:
            if _api.speaks_tls(raw) and not isinstance(self.sock, _TLSSocket):
                self.answered_in_tls = True
                return
            log.warning("gantry: ignoring a line from the broker that is not JSON: %.200r", raw)
            return
        if isinstance(message, dict) and "id" not in message and isinstance(message.get("method"), str):
            if self.on_notification is not None:
                self.on_notification(message)
            if self.unclaimed is not None:
                self.unclaimed.put(message)
            return
        future = None
        if isinstance(message, dict) and message.get("id") is not None:
            with self.lock:
                future = self.pending.pop(message["id"], None)
        if future is not None:
            future.set_result(message)
            return
        if isinstance(message, dict) and message.get("id") is None and isinstance(message.get("error"), dict):
            self.last_orphan_error = RPCError.from_error(message["error"])
        if self.unclaimed is not None:
            self.unclaimed.put(message)
        else:
            log.debug("gantry: a response nobody waits for: %.300r", raw)

    def _lost(self):
        """The ConnectionLost for calls on this closed connection; its cause is what ended the reader (a TLS
        alert is told apart from a drop by it)."""
        text = f"lost the connection to the broker at {self.address}: {self.reason or 'closed'}"
        if self.last_orphan_error is not None:
            text += f" (last error: {self.last_orphan_error})"
        lost = ConnectionLost(text)
        lost.__cause__ = self.cause
        return lost

    def close(self, reason="closed by the client"):
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.reason = reason
            waiting = list(self.pending.values())
            self.pending.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for future in waiting:
            if not future.done():
                future.set_exception(self._lost())
        if self.unclaimed is not None:
            self.unclaimed.put(CLOSED)


class Client(_api._Api):
    """A Gantry client: synchronous, thread-safe, one pipelined connection.

    Many threads may call at once; each request gets its own id and the reader thread hands each answer to its
    caller, so a long-polling ``reserve`` never holds up an ``ack``. ``hello`` is sent first on each connection.
    After a drop, calls waiting on the connection fail with ``ConnectionLost`` and the next call reconnects.

    - ``url``: ``"host:port"``, ``"gantry://[TOKEN@]host:port"`` or ``"gantrys://[TOKEN@]host:port"`` (TLS)
      (default ``$GANTRY_URL``, else ``127.0.0.1:7440``).
    - ``token``: sent in ``hello`` (default: the URL's userinfo, else ``$GANTRY_TOKEN``). Never shown in repr.
      A broker that refuses it answers ``unauthorized``: the call that opened the connection raises that
      ``RPCError`` (-32001), and it is not retried.
    - ``tls=True`` turns TLS on for a plain ``host:port``. ``ca_file``: PEM of the CA that signs the broker's
      certificate (default ``$GANTRY_CA_FILE``, else the system's trust store); the certificate and host name
      are always checked. ``cert_file``/``key_file``: a client certificate, for brokers that require one
      (``$GANTRY_CERT_FILE``/``$GANTRY_KEY_FILE``). TLS failures that retrying cannot fix raise
      ``gantry.TLSError`` at once, saying which option to pass.
    - ``name``: the ``client`` operators see in ``workers.list`` and the broker's logs.
    - ``worker``: what a worker announces in ``hello`` (``{id, queues, concurrency, handlers}``; ``Worker``
      fills it in).
    - ``on_notification(method, params)``: called for each notification the broker sends (``worker.quiet``,
      ``worker.stop``), in order, on a thread of its own (so it may call the client).
    - ``timeout``: seconds to wait for an answer (a ``reserve`` adds its ``wait_ms``); ``None`` waits forever.
    - ``patience``: seconds to keep trying to connect, and to resend a request refused with
      ``storage_unavailable`` that changed nothing (``data.applied`` false); 0 tries once.
    - ``hooks``: a ``gantry.Hooks`` (may be shared), or a dict name -> function(s); ``client.hooks`` either way.
      ``before_enqueue``, ``around_enqueue`` and ``after_enqueue`` wrap every enqueue: ``enqueue``,
      ``enqueue_batch`` and ``call("enqueue"/"enqueue_batch", ...)``.
    - ``tracing``: a ``gantry.TraceProvider``; None (the default) uses OpenTelemetry when it is installed,
      False turns tracing off. An enqueue puts the current span's ``traceparent``/``tracestate`` in ``meta``.
    """

    def __init__(self, url=None, name="gantry-python", *, token=None, tls=None, ca_file=None, cert_file=None,
                 key_file=None, worker=None, on_notification=None, timeout=60.0, patience=30.0, connect_timeout=10.0,
                 hooks=None, tracing=None):
        self._endpoint = _api.endpoint(url, token=token, tls=tls, ca_file=ca_file, cert_file=cert_file,
                                       key_file=key_file)
        self.host, self.port = self._endpoint.host, self._endpoint.port
        #: Whether the connection is TLS.
        self.tls = self._endpoint.tls
        self.name = name
        self.worker = worker
        self.on_notification = on_notification
        self.timeout = timeout
        self.patience = patience
        self.connect_timeout = connect_timeout
        #: The hooks (``gantry.Hooks``): ``@client.hooks.before_enqueue`` adds one.
        self.hooks = hooks if isinstance(hooks, Hooks) else Hooks(hooks)
        self._tracing_option = tracing
        if tracing is not None:
            _tracing.resolve(tracing)  # a wrong value is refused here, not at the first enqueue
        self._tracer_resolved = False
        self._tracer = None
        #: The session id the broker gave the current connection's ``hello``.
        self.session_id = None
        self.connections_opened = 0
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._conn = None
        self._raw = False
        self._notifications = None

    def __repr__(self):
        return f"<gantry.Client {self.host}:{self.port}{' tls' if self.tls else ''} {self.name!r}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Closes the connection (the broker puts back jobs it leased); the next call opens a new one."""
        with self._connect_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # Calls.

    def call(self, method, params=None, *, timeout=None):
        """Calls any method with a dict of params; returns its ``result`` or raises ``RPCError``.

        A request refused with ``storage_unavailable`` and ``data.applied`` false (nothing was done) is sent
        again with a backoff (0.1 s doubling to 2 s) for up to ``patience`` seconds. ``enqueue`` and
        ``enqueue_batch`` go through the enqueue hooks and get the trace context.
        """
        if method in _api.ENQUEUE_METHODS and (self.hooks or self.tracer is not None):
            request = _api.enqueue_request(method, params)
            if request is not None:
                return self._enqueue(method, timeout, *request)
        return self._call(method, params, timeout)

    @property
    def tracer(self):
        """The ``TraceProvider`` in use (None: no tracing), decided on first use (OpenTelemetry is imported
        then, when ``tracing`` was left None)."""
        if not self._tracer_resolved:
            self._tracer = _tracing.resolve(self._tracing_option)
            self._tracer_resolved = True
        return self._tracer

    def _enqueue(self, method, timeout, params, jobs, subject):
        hooks, tracer, answers = self.hooks, self.tracer, []
        for job in jobs:
            hooks._run_before("before_enqueue", job, job=job)
        _api.settle_timestamps(jobs)

        def send():
            if tracer is not None:
                _tracing.inject(tracer, jobs)
            answers.append(self._call(method, params, timeout))
            return answers[0]
        try:
            hooks._run_around("around_enqueue", subject, send, job=subject)
        except Exception:
            if not answers:
                raise
            # The broker stored the job: a hook that raised afterwards was reported, and cannot undo it.
        for job, answer in zip(jobs, _api.enqueue_answers(method, answers[0], jobs)):
            hooks._run_after("after_enqueue", job, answer, job=job)
        return answers[0]

    def _call(self, method, params, timeout):
        deadline = time.monotonic() + self.patience
        delay = 0.1
        while True:
            try:
                return self._call_once(method, params, timeout)
            except RPCError as error:
                if not (error.code == STORAGE_UNAVAILABLE and isinstance(error.data, dict)
                        and error.data.get("applied") is False and time.monotonic() + delay < deadline):
                    raise
                log.info("gantry: the broker cannot reach PostgreSQL; resending %s in %.1f s", method, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _invoke(self, method, params, extract=None, wait_ms=0):
        timeout = None if self.timeout is None else self.timeout + wait_ms / 1000
        result = self.call(method, params, timeout=timeout)
        return extract(result) if extract else result

    def _call_once(self, method, params, timeout):
        request_id = self._next_id()
        line = _api.request_line(request_id, method, params)  # encoding errors raise before anything is sent
        return self._exchange(self._connection(), request_id, line, timeout or self.timeout)

    def _next_id(self):
        with self._ids_lock:
            return next(self._ids)

    def _exchange(self, conn, request_id, line, timeout):
        response = conn.request(request_id, line, timeout)
        if "error" in response:
            raise RPCError.from_error(response["error"])
        return response.get("result")

    # The connection.

    def _connection(self):
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        with self._connect_lock:
            if self._conn is not None and not self._conn.closed:
                return self._conn
            self._conn = self._open()
            return self._conn

    def _open(self):
        """Connects and says hello, trying again with a backoff for ``patience`` seconds while the broker cannot
        be reached. What trying again cannot fix is raised at once: the broker's refusal of ``hello`` (an
        RPCError, e.g. ``unauthorized``) and TLS failures (TLSError)."""
        address = self._endpoint.address
        deadline = time.monotonic() + self.patience
        delay = 0.1
        while True:
            try:
                conn = self._connect(address)
                try:
                    hello_id = self._next_id()
                    params = _api.hello_params(self.name, self.worker, self._endpoint.token)
                    hello = _api.request_line(hello_id, "hello", params)
                    self.session_id = self._exchange(conn, hello_id, hello, self.timeout)["session_id"]
                except BaseException as error:
                    conn.close()
                    if isinstance(error, ConnectionLost) and conn.answered_in_tls:
                        raise _api.plain_to_tls_error(self._endpoint) from None
                    raise
                self.connections_opened += 1
                return conn
            except (OSError, TimeoutError) as error:  # ConnectionLost is an OSError; RPCError is not retried
                failure = _api.tls_failure(error, self._endpoint)
                if failure is not None:
                    raise failure from failure.__cause__
                if time.monotonic() + delay >= deadline:
                    raise ConnectionLost(f"cannot reach the broker at {address} ({error}); is gantryd running "
                                         f"there?{_api.connection_hint(self._endpoint, error)}") from error
                log.info("gantry: broker at %s unreachable (%s); retrying in %.1f s", address, error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _connect(self, address):
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._endpoint.tls:  # the handshake, under connect_timeout; then non-blocking (_TLSSocket)
                sock = _TLSSocket(self._endpoint.ssl_context.wrap_socket(sock, server_hostname=self.host))
            else:
                sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        conn = _Connection(sock, self._notified, address)
        if self._raw:
            conn.unclaimed = queue.Queue()
        return conn

    def _notified(self, message):
        if self.on_notification is None:
            return
        with self._ids_lock:
            if self._notifications is None:
                self._notifications = queue.Queue()
                threading.Thread(target=self._deliver, args=(self._notifications,), name="gantry-notifications",
                                 daemon=True).start()
        self._notifications.put(message)

    def _deliver(self, notifications):
        while True:
            message = notifications.get()
            try:
                self.on_notification(message["method"], message.get("params"))
            except Exception:
                log.exception("gantry: the notification callback failed")

    # Raw lines, for the conformance replay: what the broker answers goes to _next_message, not to a caller.

    def _send_line(self, line):
        """Writes one line exactly as given (``\\n`` added) on the client's connection, opening it (with hello)
        when needed. Answers nobody waits for are then read with ``_next_message``."""
        if not self._raw:
            self._raw = True
            if self._conn is not None and self._conn.unclaimed is None:
                self._conn.unclaimed = queue.Queue()
        data = line if isinstance(line, bytes) else line.encode()
        self._connection().write(data + b"\n")

    def _next_message(self, timeout=30.0):
        """The next message from the broker that no call waits for (notifications from the broker included, as
        they come between responses), decoded; ``None`` once the connection is closed. Raises TimeoutError
        when none comes within ``timeout`` seconds."""
        conn = self._conn
        if conn is None or conn.unclaimed is None:
            return CLOSED
        try:
            message = conn.unclaimed.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no message from the broker within {timeout} s") from None
        if message is CLOSED:
            conn.unclaimed.put(CLOSED)  # stays closed for later reads
        return message
