"""What the synchronous and the asyncio client share: addresses, JSON lines, and one method per broker call.

Each method of ``_Api`` builds the params and says how to read the result, then hands both to ``_invoke``:
``Client._invoke`` calls at once and returns the value, ``AsyncClient._invoke`` returns a coroutine of it.
"""
import datetime
import json
import os
import re
import socket
import traceback

DEFAULT_PORT = 7440
DEFAULT_URL = "127.0.0.1:7440"
PROTOCOL = 1
#: Message and backtrace sent in a nack are trimmed to stay far below the broker's 1 MiB line limit.
MAX_ERROR_MESSAGE = 16 * 1024
MAX_BACKTRACE_LINES = 200


def parse_url(url):
    """``gantry://host:port``, ``host:port`` or ``host`` (port 7440) -> (host, port). IPv6 in brackets."""
    if url is None:
        url = os.environ.get("GANTRY_URL", DEFAULT_URL)
    address = url[len("gantry://"):] if url.startswith("gantry://") else url
    address = address.rstrip("/")
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"The broker address must look like gantry://127.0.0.1:7440 or host:port (got {url!r}).")
    port = int(port) if port else DEFAULT_PORT
    if not 1 <= port <= 65535:
        raise ValueError(f"The broker address must end in a port from 1 to 65535 (got {url!r}).")
    return host, port


def default_worker_id():
    return f"{socket.gethostname()}:{os.getpid()}"


#: 309 digits in a row: an integer literal too large for a 64-bit float (or a long run of digits in a string).
_HUGE_NUMBER = re.compile(rb"[0-9]{309}")


def encode_line(message):
    """One compact JSON line, ending in ``\\n``. What the broker could not answer by id is refused here with
    ValueError or TypeError, before anything is sent: NaN, infinities, and integers beyond a 64-bit float
    (gantryd answers those with a parse error and ``id`` null, so the call would wait for nothing)."""
    line = json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    if _HUGE_NUMBER.search(line):
        _refuse_huge_integers(message)
    return line


def _refuse_huge_integers(value, path="request"):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > 1.7976931348623157e308:  # compared exactly: int vs float
            raise ValueError(f"{path} is an integer too large for a 64-bit float; send it as a string")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_huge_integers(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _refuse_huge_integers(item, f"{path}[{index}]")


def request_line(request_id, method, params):
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return encode_line(message)


def timestamp(value):
    """A datetime (naive means local time) -> RFC 3339 UTC with milliseconds; strings pass unchanged."""
    if isinstance(value, datetime.datetime):
        value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value


def drop_none(params):
    return {key: value for key, value in params.items() if value is not None}


_TIMESTAMP_FIELDS = ("run_at", "expires_at")


def job_params(type, args=None, **options):
    """The params of one job for ``enqueue`` / ``enqueue_batch``; None means "the broker's default"."""
    params = drop_none({"type": type, "args": args, **options})
    for key in _TIMESTAMP_FIELDS:
        if key in params:
            params[key] = timestamp(params[key])
    return params


def error_object(error, kind=None, backtrace=None):
    """A nack's ``error``: from an exception (message, class name, traceback lines), a string or a dict."""
    if isinstance(error, BaseException):
        message = str(error) or type(error).__name__
        kind = kind or type(error).__name__
        if backtrace is None:
            backtrace = "".join(traceback.format_exception(error)).splitlines()
    elif isinstance(error, dict):
        return drop_none(error)
    else:
        message = str(error)
    if isinstance(backtrace, list) and len(backtrace) > MAX_BACKTRACE_LINES:
        backtrace = backtrace[:10] + ["..."] + backtrace[-(MAX_BACKTRACE_LINES - 11):]
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[:MAX_ERROR_MESSAGE] + "…"
    return drop_none({"message": message, "kind": kind, "backtrace": backtrace})


def _listed(value):
    return [value] if isinstance(value, str) else list(value)


def _key(name):
    return lambda result: result[name]


class _Api:
    """The broker's methods, for both clients. ``_invoke(method, params, extract, wait_ms)`` does the call."""

    def _invoke(self, method, params, extract=None, wait_ms=0):
        raise NotImplementedError

    def enqueue(self, type, args=None, *, queue=None, priority=None, run_at=None, delay_ms=None,
                max_attempts=None, timeout_ms=None, expires_at=None, queue_timeout_ms=None, unique_key=None,
                tags=None, meta=None):
        """Stores one job; returns its id once the broker has committed it. ``run_at``/``expires_at``: a
        datetime or an RFC 3339 string. Options left None take the broker's defaults."""
        params = job_params(type, args, queue=queue, priority=priority, run_at=run_at, delay_ms=delay_ms,
                            max_attempts=max_attempts, timeout_ms=timeout_ms, expires_at=expires_at,
                            queue_timeout_ms=queue_timeout_ms, unique_key=unique_key, tags=tags, meta=meta)
        return self._invoke("enqueue", params, _key("id"))

    def enqueue_batch(self, jobs):
        """Stores all the jobs or none; returns their ids in order. Each job is a dict of ``enqueue``'s params
        (``{"type": ..., "args": ..., "queue": ...}``)."""
        params = {"jobs": [job_params(**job) for job in jobs]}
        return self._invoke("enqueue_batch", params, _key("ids"))

    def reserve(self, queues, max=1, wait_ms=0, lease_ms=None):
        """Leases up to ``max`` jobs from ``queues`` (in that order of preference), waiting up to ``wait_ms``
        for one; returns the list of reserved jobs (dicts), possibly empty."""
        params = drop_none({"queues": _listed(queues), "max": max, "wait_ms": wait_ms, "lease_ms": lease_ms})
        return self._invoke("reserve", params, _key("jobs"), wait_ms=wait_ms or 0)

    def ack(self, id, result=None):
        """The job succeeded; ``result`` (any JSON) is kept with it. Returns ``{"ok": True}``, with
        ``"cancel_requested": True`` when an operator had asked to cancel it."""
        return self._invoke("ack", drop_none({"id": id, "result": result}))

    def nack(self, id, error, *, kind=None, backtrace=None, retry=None, retry_in_ms=None):
        """The attempt failed. ``error``: an exception (message, class name and traceback are sent), a message
        string (with optional ``kind``/``backtrace``) or an error dict. Returns ``{"state", "next_run_at"?}``."""
        params = drop_none({"id": id, "error": error_object(error, kind, backtrace), "retry": retry,
                            "retry_in_ms": retry_in_ms})
        return self._invoke("nack", params)

    def extend(self, ids, lease_ms=None):
        """Pushes out leases this connection holds; returns ``{"leases": [...], "lost": [...]}``. A lease with
        ``cancel_requested: True`` is a job an operator cancelled."""
        return self._invoke("extend", drop_none({"ids": _listed(ids), "lease_ms": lease_ms}))

    def job(self, id):
        """The whole job (``jobs.get``): state, attempts, errors, result."""
        return self._invoke("jobs.get", {"id": id})

    def stats(self):
        return self._invoke("stats", None)

    # Operators' methods.

    def jobs_list(self, *, queue=None, state=None, type=None, tag=None, limit=None, cursor=None):
        """One page of jobs, newest first: ``{"jobs": [...], "next_cursor"?}``."""
        params = drop_none({"queue": queue, "state": state, "type": type, "tag": tag, "limit": limit,
                            "cursor": cursor})
        return self._invoke("jobs.list", params)

    def jobs_retry(self, id):
        return self._invoke("jobs.retry", {"id": id})

    def jobs_cancel(self, id):
        return self._invoke("jobs.cancel", {"id": id})

    def jobs_discard(self, id):
        return self._invoke("jobs.discard", {"id": id})

    def cleanup(self, older_than_ms, *, states=None, queue=None, limit=None):
        params = drop_none({"older_than_ms": older_than_ms, "states": states, "queue": queue, "limit": limit})
        return self._invoke("cleanup", params)

    def queues_pause(self, queue):
        return self._invoke("queues.pause", {"queue": queue})

    def queues_resume(self, queue):
        return self._invoke("queues.resume", {"queue": queue})

    def queues_list(self):
        return self._invoke("queues.list", None, _key("queues"))

    def workers_list(self):
        return self._invoke("workers.list", None, _key("workers"))

    def workers_quiet(self, id=None, *, all=False):
        """Tells workers (by worker id or session id, or ``all=True``) to take nothing new; returns how many."""
        return self._invoke("workers.quiet", drop_none({"id": id, "all": all or None}), _key("workers"))

    def workers_stop(self, id=None, *, all=False):
        """Tells workers to hand back what they hold and exit; returns how many were told."""
        return self._invoke("workers.stop", drop_none({"id": id, "all": all or None}), _key("workers"))


def hello_params(name, worker):
    return drop_none({"client": name, "protocol": PROTOCOL, "worker": worker})
