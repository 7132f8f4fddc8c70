"""Errors raised by the Gantry client: the broker's JSON-RPC errors, lost connections, permanent job failures."""

#: Every error code of protocol version 1 (proto-json/errors.json): code -> (name, retryable). ``unauthorized``
#: (no valid token in ``hello``) and ``forbidden`` (the token's role or queues do not allow this) are not
#: retryable: the same request with the same token fails the same way.
ERRORS = {
    -32700: ("parse_error", False),
    -32600: ("invalid_request", False),
    -32601: ("method_not_found", False),
    -32602: ("invalid_params", False),
    -32603: ("internal_error", False),
    -32001: ("unauthorized", False),
    -32002: ("not_found", False),
    -32003: ("lease_lost", False),
    -32004: ("storage_unavailable", True),
    -32005: ("overloaded", True),
    -32006: ("payload_too_large", False),
    -32007: ("shutting_down", True),
    -32008: ("wrong_state", False),
    -32009: ("forbidden", False),
}

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHORIZED = -32001
NOT_FOUND = -32002
LEASE_LOST = -32003
STORAGE_UNAVAILABLE = -32004
OVERLOADED = -32005
PAYLOAD_TOO_LARGE = -32006
SHUTTING_DOWN = -32007
WRONG_STATE = -32008
FORBIDDEN = -32009


class GantryError(Exception):
    """Base class of every error this package raises."""


class RPCError(GantryError):
    """The broker refused a request: its JSON-RPC ``error`` object.

    ``code`` is the number, ``name`` its name in the error table (``"invalid_params"``, or ``"unknown"`` for a
    code this client does not know), ``message`` the broker's text for people, ``data`` its details for
    programs (``None`` when absent). ``field`` is ``data["field"]`` for ``invalid_params``.

    A broker with tokens answers ``unauthorized`` (-32001) to a ``hello`` with a wrong or missing token (the call
    that opened the connection raises it) and ``forbidden`` (-32009, ``data``: ``role``, ``method``, ``queue``)
    to a method or queue the token may not use.
    """

    def __init__(self, code, message, data=None):
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data
        self.name = ERRORS.get(code, ("unknown", False))[0]

    @classmethod
    def from_error(cls, error):
        if not isinstance(error, dict):
            return cls(INTERNAL_ERROR, f"malformed error object from the broker: {error!r}")
        return cls(error.get("code"), error.get("message", ""), error.get("data"))

    @property
    def field(self):
        """The offending param (``"priority"``, ``"jobs[1].type"``) of an ``invalid_params`` error, else None."""
        return self.data.get("field") if isinstance(self.data, dict) else None

    @property
    def retryable(self):
        """Whether the same request may succeed if sent again later (with a backoff)."""
        return ERRORS.get(self.code, ("unknown", False))[1]

    def __str__(self):
        return f"{self.name} ({self.code}): {self.message}"


class ConnectionLost(GantryError, ConnectionError):
    """The connection to the broker could not be opened, or dropped before the answer came.

    The request may or may not have been applied. Leases held through the lost connection are gone too (the
    broker put those jobs back). The client reconnects on the next call.
    """


class TLSError(ConnectionLost):
    """The TLS connection to the broker failed in a way that trying again cannot fix: its certificate is not
    trusted or not for this host, it wants a client certificate (or refused ours), or it does not speak TLS.
    The message says which, and what to pass (``ca_file``, ``cert_file``/``key_file``, ``gantrys://``). The
    client does not retry it."""


class PermanentError(GantryError):
    """Raise it (or a subclass) from a worker handler when retrying cannot help: the job goes straight to the
    dead set (``nack`` with ``retry: false``) whatever attempts it has left."""
