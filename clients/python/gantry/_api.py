"""What the synchronous and the asyncio client share: addresses, tokens and TLS, JSON lines, and one method per
broker call.

Each method of ``_Api`` builds the params and says how to read the result, then hands both to ``_invoke``:
``Client._invoke`` calls at once and returns the value, ``AsyncClient._invoke`` returns a coroutine of it.
"""
import datetime
import json
import os
import re
import socket
import ssl
import traceback
import urllib.parse

from .errors import TLSError

DEFAULT_PORT = 7440
DEFAULT_URL = "127.0.0.1:7440"
PROTOCOL = 1
#: Message and backtrace sent in a nack are trimmed to stay far below the broker's 1 MiB line limit.
MAX_ERROR_MESSAGE = 16 * 1024
MAX_BACKTRACE_LINES = 200
#: The keywords of Client/AsyncClient (and Worker, which passes them on) that say how to connect.
SECURITY_OPTIONS = ("token", "tls", "ca_file", "cert_file", "key_file")
_SCHEMES = {"gantry": False, "gantrys": True}


class Address:
    """A parsed broker URL: ``host``, ``port``, ``tls`` (``gantrys://``) and ``token`` (the userinfo, or None).
    Its repr leaves the token out, so it may be logged."""

    def __init__(self, host, port, tls, token):
        self.host, self.port, self.tls, self.token = host, port, tls, token

    def __repr__(self):
        scheme = "gantrys" if self.tls else "gantry"
        return f"<gantry address {scheme}://{'***@' if self.token else ''}{self.host}:{self.port}>"


def parse_address(url):
    """``gantry://[TOKEN@]host:port``, ``gantrys://[TOKEN@]host:port`` (TLS), ``host:port`` or ``host`` (port
    7440) -> Address. The token is percent-decoded; IPv6 hosts go in brackets. Error messages never quote the
    URL, which may hold a token."""
    if url is None:
        url = os.environ.get("GANTRY_URL", DEFAULT_URL)
    scheme, found, address = url.partition("://")
    if not found:
        scheme, address = "gantry", url
    if scheme.lower() not in _SCHEMES:
        raise ValueError(f"The broker URL must start with gantry:// or gantrys:// (TLS), not {scheme}://.")
    userinfo, at, address = address.rstrip("/").rpartition("@")
    token = urllib.parse.unquote(userinfo) if at else None
    if at and not token:
        raise ValueError("The broker URL has an empty token before '@'.")
    host, port = _host_port(address)
    return Address(host, port, _SCHEMES[scheme.lower()], token)


def _host_port(address):
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"The broker address must look like gantry://127.0.0.1:7440 or host:port (got {address!r}).")
    port = int(port) if port else DEFAULT_PORT
    if not 1 <= port <= 65535:
        raise ValueError(f"The broker address must end in a port from 1 to 65535 (got {address!r}).")
    return host, port


def parse_url(url):
    """``parse_address`` for those who only want (host, port)."""
    address = parse_address(url)
    return address.host, address.port


class Endpoint:
    """Where a client connects and how: ``host``, ``port``, ``token`` (sent in ``hello``; left out of repr and of
    every message) and ``ssl_context`` (None for plain TCP), plus the TLS files, for error messages."""

    def __init__(self, host, port, token, ssl_context, ca_file=None, cert_file=None):
        self.host, self.port, self.token, self.ssl_context = host, port, token, ssl_context
        self.ca_file, self.cert_file = ca_file, cert_file

    @property
    def tls(self):
        return self.ssl_context is not None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def __repr__(self):
        return f"<gantry endpoint {'gantrys' if self.tls else 'gantry'}://{self.address}>"


def endpoint(url=None, *, token=None, tls=None, ca_file=None, cert_file=None, key_file=None):
    """Resolves a client's URL and security keywords into an Endpoint.

    The token is the ``token`` keyword, else the URL's userinfo, else ``$GANTRY_TOKEN``. TLS is on for
    ``gantrys://`` or ``tls=True``; then ``ca_file``/``cert_file``/``key_file`` fall back to ``$GANTRY_CA_FILE``,
    ``$GANTRY_CERT_FILE``, ``$GANTRY_KEY_FILE`` (the key variable only with the certificate variable: a key goes
    with its certificate). Asking for a certificate file on a plain connection is an error rather than silently
    sending in clear what the caller meant to protect; the variables are only read for TLS, so they may stay
    set for plain brokers too.
    """
    address = parse_address(url)
    if token is not None and not (isinstance(token, str) and token):
        raise ValueError("token must be a non-empty string (or None: the URL's, else $GANTRY_TOKEN).")
    token = token or address.token or os.environ.get("GANTRY_TOKEN") or None
    if tls is False and address.tls:
        raise ValueError("tls=False contradicts a gantrys:// URL; use gantry:// for a plain connection.")
    if not (address.tls or tls):
        given = [name for name, value in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file))
                 if value is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} given for a plain connection: use a gantrys:// URL or "
                             "tls=True.")
        return Endpoint(address.host, address.port, token, None)
    ca_file = ca_file or os.environ.get("GANTRY_CA_FILE") or None
    if cert_file is None:  # a key from the environment goes with the certificate from the environment only
        cert_file = os.environ.get("GANTRY_CERT_FILE") or None
        key_file = key_file or (os.environ.get("GANTRY_KEY_FILE") or None if cert_file else None)
    context = tls_context(ca_file, cert_file, key_file)
    return Endpoint(address.host, address.port, token, context, ca_file, cert_file)


def tls_context(ca_file=None, cert_file=None, key_file=None):
    """A client-side SSLContext that verifies the broker's certificate and host name (against ``ca_file``, else
    the system's trust store) and, for mutual TLS, presents ``cert_file`` (its key in ``key_file``, or in
    ``cert_file`` itself). Unreadable files are refused here, when the client is made, not at the first call."""
    if key_file and not cert_file:
        raise ValueError("key_file given without cert_file (GANTRY_CERT_FILE): a client certificate needs both.")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"ca_file {ca_file!r} (GANTRY_CA_FILE) cannot be loaded as PEM certificates: "
                         f"{error}") from error
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"the client certificate cert_file {cert_file!r} / key_file {key_file!r} "
                             f"(GANTRY_CERT_FILE / GANTRY_KEY_FILE) cannot be loaded: {error}") from error
    return context


# What OpenSSL says when TLS fails, grouped by what the user has to do about it.
_UNTRUSTED = {2, 18, 19, 20, 21, 27}  # no issuer / self-signed / untrusted (X509_V_ERR_*)
_NOT_FOR_HOST = {62, 64}  # host name / IP address mismatch
_OUT_OF_DATE = {9, 10}  # not yet valid / expired
_NEEDS_CLIENT_CERT = {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_HANDSHAKE_FAILURE",
                      "PEER_DID_NOT_RETURN_A_CERTIFICATE"}
_CLIENT_CERT_REFUSED = {"TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
                        "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_REVOKED",
                        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "TLSV1_ALERT_ACCESS_DENIED",
                        "TLSV1_ALERT_DECRYPT_ERROR", "CERTIFICATE_VERIFY_FAILED"}
_NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST",
            "UNKNOWN_PROTOCOL", "RECORD_TOO_LARGE", "WRONG_SSL_VERSION"}


def tls_failure(error, endpoint):
    """A TLSError saying what to do when ``error`` (or the error behind a ConnectionLost) is a TLS failure that
    trying again cannot fix; None for anything else (a refused or dropped connection is retried as before)."""
    if isinstance(error, TLSError):
        return error
    cause = error if isinstance(error, ssl.SSLError) else getattr(error, "__cause__", None)
    if not isinstance(cause, ssl.SSLError) or isinstance(cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError,
                                                                 ssl.SSLWantReadError, ssl.SSLWantWriteError)):
        return None
    failure = TLSError(tls_advice(cause, endpoint))
    failure.__cause__ = cause
    return failure


def tls_advice(error, endpoint):
    """The message of a TLSError: what went wrong, in the user's terms, and which option fixes it."""
    at = f"at {endpoint.address}"
    if isinstance(error, ssl.SSLCertVerificationError):
        code, detail = error.verify_code, error.verify_message
        if code in _UNTRUSTED and endpoint.ca_file:
            return (f"the broker's certificate {at} is not signed by the CA in ca_file {endpoint.ca_file!r} "
                    f"({detail}): pass the PEM of the CA that signed it as ca_file=... (GANTRY_CA_FILE)")
        if code in _UNTRUSTED:
            return (f"the broker's certificate {at} is not trusted ({detail}): pass ca_file=... (GANTRY_CA_FILE), "
                    "the PEM of the CA that signed it")
        if code in _NOT_FOR_HOST:
            return (f"the broker's certificate {at} is not for {endpoint.host!r} ({detail}): connect with a host "
                    "name or IP address the certificate lists")
        if code in _OUT_OF_DATE:
            return (f"the broker's certificate {at} is expired or not yet valid ({detail}): the broker needs a "
                    "current certificate (or this machine's clock is wrong)")
        return f"the broker's certificate {at} was refused ({detail})"
    reason = error.reason or ""
    if reason in _NEEDS_CLIENT_CERT and not endpoint.cert_file:
        return (f"the broker {at} requires a client certificate (mutual TLS): pass cert_file=... and key_file=... "
                f"(GANTRY_CERT_FILE / GANTRY_KEY_FILE) ({reason})")
    if reason in _NEEDS_CLIENT_CERT or reason in _CLIENT_CERT_REFUSED:
        return (f"the broker {at} refused the client certificate in cert_file {endpoint.cert_file!r} ({reason}): "
                "it must be current and signed by a CA the broker trusts")
    if reason in _NOT_TLS:
        return (f"the broker {at} did not answer in TLS ({reason}): is it serving TLS? For a plain broker use "
                "gantry://host:port")
    return f"TLS with the broker {at} failed: {error}"


#: The first bytes of a TLS record (alert or handshake): what a TLS broker sends a client that spoke plain JSON.
_TLS_RECORD = re.compile(rb"[\x15\x16]\x03[\x00-\x04]")


def speaks_tls(raw):
    """Whether a line the broker sent that is not JSON is the start of a TLS record."""
    return _TLS_RECORD.match(raw) is not None


def plain_to_tls_error(endpoint):
    return TLSError(f"the broker at {endpoint.address} answered in TLS: use gantrys://{endpoint.address} (or "
                    "tls=True), with ca_file=... (GANTRY_CA_FILE) unless the system trusts its certificate")


def connection_hint(endpoint, error):
    """Added to the last error when a connection was made but dropped before ``hello`` was answered (not when
    it was refused): a TLS broker hangs up on plain JSON, and one that requires a client certificate may hang
    up on a client without one, neither always saying why."""
    if isinstance(error, (ConnectionRefusedError, socket.gaierror, TimeoutError)):
        return ""
    if not endpoint.tls:
        return f"; if the broker serves TLS, use gantrys://{endpoint.address}"
    if not endpoint.cert_file:
        return "; if the broker requires a client certificate, pass cert_file=... and key_file=..."
    return ""


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


#: The methods that store jobs: what the enqueue hooks and the trace context wrap.
ENQUEUE_METHODS = ("enqueue", "enqueue_batch")


def enqueue_request(method, params):
    """For an enqueue's hooks: (params, jobs, subject), a copy of ``params`` whose job dicts (and their ``meta``)
    hooks may change without touching the caller's; ``jobs`` is the list of its job dicts and ``subject`` what
    ``around_enqueue`` gets (the job, or a batch's list). None for params the broker will refuse anyway."""
    if not isinstance(params, dict):
        return None
    if method == "enqueue":
        job = _own(params)
        return job, [job], job
    jobs = params.get("jobs")
    if not isinstance(jobs, (list, tuple)) or not all(isinstance(job, dict) for job in jobs):
        return None
    jobs = [_own(job) for job in jobs]
    return {**params, "jobs": jobs}, jobs, jobs


def _own(job):
    job = dict(job)
    if isinstance(job.get("meta"), dict):
        job["meta"] = dict(job["meta"])
    return job


def settle_timestamps(jobs):
    """A datetime a hook put in ``run_at``/``expires_at`` is sent as RFC 3339, as ``enqueue``'s own are."""
    for job in jobs:
        for key in _TIMESTAMP_FIELDS:
            if key in job:
                job[key] = timestamp(job[key])


def enqueue_answers(method, answer, jobs):
    """What ``after_enqueue`` gets for each job: the broker's answer, or ``{"id": ...}`` for a batch's jobs."""
    if method == "enqueue":
        return [answer]
    ids = answer.get("ids") if isinstance(answer, dict) else None
    if not isinstance(ids, list) or len(ids) != len(jobs):
        return [answer] * len(jobs)
    return [{"id": id} for id in ids]


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

    def ack(self, id, result=None, *, set=None, jump_to=None):
        """The job succeeded; ``result`` (any JSON) is kept with it. Returns ``{"ok": True}``, with
        ``"cancel_requested": True`` when an operator had asked to cancel it.

        For a step of an operation (its reserved job has ``operation``): ``set`` (a dict) is merged into the
        operation's globals in the ack's own commit, and ``jump_to`` sends the operation on, once this step's
        place is done, to another branch (``"refund"``) or a step of one (``{"branch": "main", "step": "ship"}``).
        On any other job either one is refused: ``RPCError`` -32602 with ``field`` ``set`` / ``jump_to``."""
        return self._invoke("ack", drop_none({"id": id, "result": result, "set": set, "jump_to": jump_to}))

    def ack_many(self, ids, results=None):
        """Acks several jobs in one request and one commit (``ack`` with ``ids``: 1 to 10000 distinct ids).
        ``results``: a dict id -> result, for those that have one. A job whose lease is lost does not fail the
        call: returns ``{"ok", "acked": [ids], "lost": [{"id", "state"?}], "cancel_requested_ids"?: [ids]}``,
        ``ok`` false when some are in ``lost`` (``state`` absent when no job has that id)."""
        return self._invoke("ack", drop_none({"ids": _listed(ids), "results": results or None}))

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

    # Operations: named sets of steps, each step a job, sharing ``globals``.

    def operations_start(self, name, branches, globals=None, *, queue=None, key=None):
        """Starts an operation; returns ``{"id", "state", "created"}``. ``branches`` maps a branch name to its
        steps, ``"main"`` first to run: a step is a job type (``"charge.card"``), a dict ``{"type", "queue"?,
        "priority"?, "max_attempts"?, "timeout_ms"?, "args"?}`` or ``{"parallel": [steps]}`` (run at once; the
        next step starts when all are completed). ``queue`` is the queue of steps that name none (broker
        default ``"default"``). With ``key``, starting the same name and key again answers the existing
        operation, with ``created`` false."""
        params = drop_none({"name": name, "branches": branches, "globals": globals, "queue": queue, "key": key})
        return self._invoke("operations.start", params)

    def operations_get(self, id):
        """The whole operation: ``state`` (running, completed, failed, cancelled), ``globals``, ``branch`` and
        ``index`` (where it is), ``path`` (the branches it went through), ``error`` when failed, ``branches``
        (the plan) and ``steps`` (each run of each step: state, job_id, attempts, timings, error)."""
        return self._invoke("operations.get", {"id": id})

    def operations_list(self, *, name=None, state=None, globals=None, limit=None, cursor=None):
        """One page of operations, newest first, without their plans and steps: ``{"operations": [...],
        "next_cursor"?}``. ``globals`` keeps those whose globals contain it (JSON containment)."""
        params = drop_none({"name": name, "state": state, "globals": globals, "limit": limit, "cursor": cursor})
        return self._invoke("operations.list", params)

    def operations_retry(self, id, *, from_=None):
        """Resumes a failed or cancelled operation at the step that did not complete (completed steps are not
        run again); ``from_="start"`` runs it again from main's first step with its initial globals (completed
        operations too). Returns ``{"id", "state", "job_ids"}``. (``from`` is a Python keyword, hence ``from_``.)"""
        return self._invoke("operations.retry", drop_none({"id": id, "from": from_}))

    def operations_cancel(self, id):
        """Cancels the operation's waiting steps and asks workers running one to stop (as ``jobs_cancel``);
        returns ``{"id", "state": "cancelled", "cancelled", "stopping"}``."""
        return self._invoke("operations.cancel", {"id": id})

    # Events: something that happened, fanned out to every matching subscription's job or operation.

    def events_publish(self, type, payload=None, *, key=None, dedupe_ms=None):
        """Publishes an event: it is recorded and every active subscription matching its type and payload starts
        its job, operation or package's execution, as does every active package whose ``triggers.events`` names
        it, in one commit. Returns ``{"id", "duplicate", "triggered": [{"subscription", "job_id" |
        "operation_id"}]}``; an execution also names its ``package`` (and has no ``subscription`` when the
        package's own trigger matched), and a package target that started nothing (inactive or deleted) has
        ``skipped`` (why) instead of ``operation_id``. ``payload``: any JSON (None: the broker's default, ``{}``).
        With ``key``, publishing the same key again within ``dedupe_ms`` (broker default 24 h) starts nothing and
        answers the first event, with ``duplicate`` true, so a publish whose answer was lost may be sent again."""
        params = drop_none({"type": type, "payload": payload, "key": key, "dedupe_ms": dedupe_ms})
        return self._invoke("events.publish", params)

    def events_get(self, id):
        """One event: ``{"id", "type", "payload", "key"?, "replay_of"?, "published_at", "triggered"}``, each
        trigger with the ``state`` of its job or operation now (``deleted`` once cleaned up)."""
        return self._invoke("events.get", {"id": id})

    def events_list(self, *, type=None, since=None, limit=None, cursor=None):
        """One page of events, newest first: ``{"events": [...], "next_cursor"?}``. ``type``: exact or
        ``"prefix.*"``; ``since``: a datetime or an RFC 3339 string (published at or after)."""
        params = drop_none({"type": type, "since": timestamp(since), "limit": limit, "cursor": cursor})
        return self._invoke("events.list", params)

    def events_replay(self, id):
        """Publishes the event's type and payload again as a new event (its ``replay_of`` names the first; never
        deduplicated): every subscription matching now starts again. Returns as ``events_publish``."""
        return self._invoke("events.replay", {"id": id})

    def subscriptions_upsert(self, name, event, target, *, filter=None):
        """Creates or replaces the subscription ``name``; returns ``{"subscription", "created"}``. ``event``: an
        event type (``"order.paid"``), ``"order.*"`` (every type starting with ``order.``) or ``"*"``.
        ``target``: a job ``{"type", "queue"?, "args"? (default ``"$payload"``: the event's payload),
        "priority"?, "max_attempts"?}``, an operation ``{"operation": {"name", "branches", "queue"?,
        "globals"?}}`` or a package's execution ``{"package": name, "config"?: {overrides}}`` (both started with
        ``event: {id, type, payload}`` in their globals). ``filter``: a dict the payload must contain (JSON
        containment)."""
        params = drop_none({"name": name, "event": event, "filter": filter, "target": target})
        return self._invoke("subscriptions.upsert", params)

    def subscriptions_list(self):
        """Every subscription, by name (a list of dicts: ``name``, ``event``, ``filter``?, ``target``,
        ``paused``, ``source``, ``created_at``, ``updated_at``)."""
        return self._invoke("subscriptions.list", None, _key("subscriptions"))

    def subscriptions_delete(self, name):
        """Returns ``{"deleted": True}``; ``RPCError`` -32002 when there is no such subscription."""
        return self._invoke("subscriptions.delete", {"name": name})

    def subscriptions_pause(self, name):
        """Events start nothing through it until ``subscriptions_resume``; returns the subscription."""
        return self._invoke("subscriptions.pause", {"name": name})

    def subscriptions_resume(self, name):
        return self._invoke("subscriptions.resume", {"name": name})

    # Packages: a named list of steps with a config they read; each execution is an operation.

    def packages_upsert(self, name, steps, *, description=None, config=None, triggers=None, active=None,
                        queue=None):
        """Creates or replaces the package ``name``; returns ``{"package", "created"}`` (the package with its
        steps' defaults filled in, ``source`` and ``next_run_at``). ``steps``: as one branch of
        ``operations_start`` (job types, step dicts, ``{"parallel": [...]}``). ``config``: a dict its steps read
        (``job.package["config"]``). ``triggers``: ``{"cron"?, "timezone"?, "events"?: [event types or
        "prefix.*"], "manual"?}`` (broker default ``{"manual": True}``). ``queue``: the queue of steps that name
        none. Executions already started keep the steps and config they started with."""
        params = drop_none({"name": name, "description": description, "steps": steps, "config": config,
                            "triggers": triggers, "active": active, "queue": queue})
        return self._invoke("packages.upsert", params)

    def packages_list(self):
        """Every package, by name (a list of dicts, as ``packages_get`` returns them)."""
        return self._invoke("packages.list", None, _key("packages"))

    def packages_get(self, name):
        """The package: ``name``, ``description``?, ``steps``, ``config``, ``triggers``, ``active``, ``queue``,
        ``source``, ``next_run_at``?, ``created_at``, ``updated_at``; ``RPCError`` -32002 when there is none."""
        return self._invoke("packages.get", {"name": name})

    def packages_delete(self, name):
        """Returns ``{"deleted": True}`` (its executions stay until cleanup). ``RPCError`` -32008 while a
        subscription targets it (``data.subscriptions`` names them)."""
        return self._invoke("packages.delete", {"name": name})

    def packages_run(self, name, config=None):
        """Starts an execution by hand; returns ``{"id", "package", "state"}`` (``id`` is its operation's, for
        ``operations_get`` too). ``config`` overrides keys of the package's config for this run; a key the
        package does not have is refused (``RPCError`` -32602, ``field`` ``config.<key>``) rather than run with
        the default. -32008 when the package is inactive or its ``triggers.manual`` is false."""
        return self._invoke("packages.run", drop_none({"name": name, "config": config}))

    def packages_executions(self, name, *, limit=None, cursor=None):
        """One page of the package's executions, newest first: ``{"executions": [...], "next_cursor"?}``. Each is
        ``{"id", "package", "state", "trigger" (manual, cron, event), "config", "globals", "error"?, "created_at",
        "finished_at"?, "saved"?, "steps"}``, a step being its last run: ``{"index", "member"?, "type", "state",
        "job_id"?, "attempts", "started_at"?, "finished_at"?, "result"?, "error"?}``."""
        return self._invoke("packages.executions", drop_none({"name": name, "limit": limit, "cursor": cursor}))

    def executions_save(self, id, name, *, description=None):
        """Keeps the execution ``id`` for good under ``name`` (unique within its package; saving again renames
        it): cleanup and retention never remove it. Returns the execution, with ``saved``."""
        return self._invoke("executions.save", drop_none({"id": id, "name": name, "description": description}))

    def executions_saved(self, package=None):
        """The saved executions (of one package, or of all), newest saved first (a list of dicts)."""
        return self._invoke("executions.saved", drop_none({"package": package}), _key("executions"))


def hello_params(name, worker, token=None):
    return drop_none({"client": name, "protocol": PROTOCOL, "token": token, "worker": worker})
