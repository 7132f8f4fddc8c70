"""The synchronous client: one pipelined TCP connection shared by every thread that uses the client."""
import concurrent.futures
import itertools
import json
import logging
import queue
import socket
import threading
import time

from . import _api
from .errors import STORAGE_UNAVAILABLE, ConnectionLost, RPCError

log = logging.getLogger("gantry")

#: Returned by ``_next_message`` once the broker has closed the connection.
CLOSED = None


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
        self.unclaimed = None
        self.last_orphan_error = None
        self.reader = threading.Thread(target=self._read, name=f"gantry-reader {address}", daemon=True)
        self.reader.start()

    def request(self, request_id, line, timeout):
        future = concurrent.futures.Future()
        with self.lock:
            if self.closed:
                raise ConnectionLost(self._lost_text())
            self.pending[request_id] = future
        try:
            self.write(line)
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no answer from the broker at {self.address} within {timeout:.1f} s") from None
        finally:
            with self.lock:
                self.pending.pop(request_id, None)

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
        finally:
            self.close(reason)
            stream.close()

    def _dispatch(self, raw):
        try:
            message = json.loads(raw)
        except ValueError:
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

    def _lost_text(self):
        text = f"lost the connection to the broker at {self.address}: {self.reason or 'closed'}"
        if self.last_orphan_error is not None:
            text += f" (last error: {self.last_orphan_error})"
        return text

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
                future.set_exception(ConnectionLost(self._lost_text()))
        if self.unclaimed is not None:
            self.unclaimed.put(CLOSED)


class Client(_api._Api):
    """A Gantry client: synchronous, thread-safe, one pipelined connection.

    Many threads may call at once; each request gets its own id and the reader thread hands each answer to its
    caller, so a long-polling ``reserve`` never holds up an ``ack``. ``hello`` is sent first on each connection.
    After a drop, calls waiting on the connection fail with ``ConnectionLost`` and the next call reconnects.

    - ``url``: ``"host:port"`` or ``"gantry://host:port"`` (default ``$GANTRY_URL``, else ``127.0.0.1:7440``).
    - ``name``: the ``client`` operators see in ``workers.list`` and the broker's logs.
    - ``worker``: what a worker announces in ``hello`` (``{id, queues, concurrency, handlers}``; ``Worker``
      fills it in).
    - ``on_notification(method, params)``: called for each notification the broker sends (``worker.quiet``,
      ``worker.stop``), in order, on a thread of its own (so it may call the client).
    - ``timeout``: seconds to wait for an answer (a ``reserve`` adds its ``wait_ms``); ``None`` waits forever.
    - ``patience``: seconds to keep trying to connect, and to resend a request refused with
      ``storage_unavailable`` that changed nothing (``data.applied`` false); 0 tries once.
    """

    def __init__(self, url=None, name="gantry-python", *, worker=None, on_notification=None, timeout=60.0,
                 patience=30.0, connect_timeout=10.0):
        self.host, self.port = _api.parse_url(url)
        self.name = name
        self.worker = worker
        self.on_notification = on_notification
        self.timeout = timeout
        self.patience = patience
        self.connect_timeout = connect_timeout
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
        return f"<gantry.Client {self.host}:{self.port} {self.name!r}>"

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
        again with a backoff (0.1 s doubling to 2 s) for up to ``patience`` seconds.
        """
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
        address = f"{self.host}:{self.port}"
        deadline = time.monotonic() + self.patience
        delay = 0.1
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Connection(sock, self._notified, address)
                if self._raw:
                    conn.unclaimed = queue.Queue()
                try:
                    hello_id = self._next_id()
                    hello = _api.request_line(hello_id, "hello", _api.hello_params(self.name, self.worker))
                    self.session_id = self._exchange(conn, hello_id, hello, self.timeout)["session_id"]
                except BaseException:
                    conn.close()
                    raise
                self.connections_opened += 1
                return conn
            except (OSError, TimeoutError) as error:  # ConnectionLost is an OSError; RPCError is not retried
                if time.monotonic() + delay >= deadline:
                    raise ConnectionLost(f"cannot reach the broker at {address} ({error}); is gantryd running "
                                         "there?") from error
                log.info("gantry: broker at %s unreachable (%s); retrying in %.1f s", address, error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

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
