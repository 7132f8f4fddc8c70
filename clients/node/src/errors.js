// Errors a call can reject with, and the broker's error code table (proto-json/errors.json).

/** code → [name, retryable], as in proto-json/errors.json (-32009 forbidden came with tokens' roles and queues). */
export const ERROR_CODES = Object.freeze({
  [-32700]: ["parse_error", false],
  [-32600]: ["invalid_request", false],
  [-32601]: ["method_not_found", false],
  [-32602]: ["invalid_params", false],
  [-32603]: ["internal_error", false],
  [-32001]: ["unauthorized", false],
  [-32002]: ["not_found", false],
  [-32003]: ["lease_lost", false],
  [-32004]: ["storage_unavailable", true],
  [-32005]: ["overloaded", true],
  [-32006]: ["payload_too_large", false],
  [-32007]: ["shutting_down", true],
  [-32008]: ["wrong_state", false],
  [-32009]: ["forbidden", false],
});

/** The name of an error code: `invalid_params` for -32602; `server_error` / `unknown_error` for codes not in the table. */
export function errorName(code) {
  if (ERROR_CODES[code]) return ERROR_CODES[code][0];
  return code <= -32000 && code >= -32099 ? "server_error" : "unknown_error";
}

/** The broker refused a request: its JSON-RPC error object, with the code's name from the table. */
export class RPCError extends Error {
  constructor({ code, message, data } = {}, method) {
    super(message ?? `error ${code}`);
    this.code = code;
    this.name = errorName(code);
    this.data = data;
    this.method = method;
  }

  /** `data.field`: the param a -32602 names (`"priority"`, `"jobs[1].type"`). */
  get field() {
    return this.data?.field;
  }

  /** Whether the same request may succeed if sent again later. */
  get retryable() {
    return ERROR_CODES[this.code]?.[1] ?? false;
  }
}

/** The connection closed (or could not be opened) before the answer came. The next call reconnects. */
export class ConnectionLost extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "ConnectionLost";
  }
}

/**
 * TLS with the broker failed for a reason a retry cannot fix: its certificate is not trusted or not for this
 * host, it wants a client certificate, a PEM file cannot be read, or one side does not speak TLS. A
 * ConnectionLost, so code that handles lost connections still sees it; the client does not reconnect in a loop
 * on it, and the message says what to change. `code` is Node's or OpenSSL's code when there is one.
 */
export class TLSError extends ConnectionLost {
  constructor(message, options) {
    super(message, options);
    this.name = "TLSError";
    this.code = options?.cause?.code;
  }
}

/** A request line longer than the broker takes (1 MiB): refused here, since the broker would close the connection. */
export class RequestTooLarge extends Error {
  constructor(bytes, limit) {
    super(`The request is ${bytes} bytes, over the broker's line limit of ${limit} bytes; it was not sent. ` +
      "Store large payloads elsewhere and enqueue a reference to them.");
    this.name = "RequestTooLarge";
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** Throw this from a handler (or any error with `permanent: true`) when a retry cannot help: the job goes dead. */
export class PermanentError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
    this.permanent = true;
  }
}
