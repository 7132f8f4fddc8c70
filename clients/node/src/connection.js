// One connection to a broker, plain TCP or TLS: newline framing, responses matched to pending requests by id,
// broker notifications told apart from responses. GantryClient builds on it; tests use it raw.
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { ConnectionLost, TLSError } from "./errors.js";

const NEWLINE = 0x0a;

/** The address with any token in it replaced by `***`, for messages: a token is never printed. */
export function redactAddress(url) {
  return String(url).replace(/^((?:[a-z][a-z0-9+.-]*:\/\/)?)[^/]*@/i, "$1***@");
}

/**
 * Reads a broker address: `host:port`, `gantry://host:port` (plain TCP) or `gantrys://host:port` (TLS), each
 * with an optional token as userinfo (`gantrys://TOKEN@host:port`; percent-decoded, so a token holding `@`,
 * `:` or `%` is written `%40`, `%3A`, `%25`), `[::1]:port` for IPv6; the port defaults to 7440. Resolves
 * `{host, port}`, plus `tls: true` for gantrys:// and `token` when the address has one (so a plain address
 * reads as it always did).
 */
export function parseAddress(url) {
  const wrong = (why) => new TypeError(`The broker address must look like 127.0.0.1:7440, gantry://host:port or ` +
    `gantrys://TOKEN@host:port (${why}; got ${redactAddress(url)}).`);
  let text = String(url).replace(/\/+$/, "");
  let secure = false;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme) {
    const name = scheme[1].toLowerCase();
    if (name !== "gantry" && name !== "gantrys") throw wrong(`the scheme is gantry:// or gantrys://, not ${name}://`);
    secure = name === "gantrys";
    text = text.slice(scheme[0].length);
  }
  // The last @ ends the userinfo: a host never holds one, a token may (if its writer did not encode it).
  const at = text.lastIndexOf("@");
  let token;
  if (at !== -1) {
    try {
      token = decodeURIComponent(text.slice(0, at));
    } catch {
      throw wrong("the token before @ is not valid percent-encoding");
    }
    text = text.slice(at + 1);
  }
  const match = /^(?:\[([^\]]+)\]|([^:\[\]/@]+))(?::(\d+))?$/.exec(text);
  const port = match?.[3] === undefined ? 7440 : Number(match[3]);
  if (!match || !(port >= 1 && port <= 65535)) throw wrong("host and port not understood");
  return { host: match[1] ?? match[2], port, ...(secure ? { tls: true } : {}), ...(token ? { token } : {}) };
}

/** `host:port`, with brackets around an IPv6 host, as a URL writes it. */
export const hostPort = (host, port) => `${String(host).includes(":") ? `[${host}]` : host}:${port}`;

/**
 * A PEM file's contents. A file that cannot be read, or holds no PEM block of the kind wanted, is a TLSError
 * naming the option and its env variable: Node would take a CA bundle without certificates silently, and then
 * report the broker's certificate as untrusted, which points the wrong way.
 */
function readPem(path, option, variable, kind) {
  let pem;
  try {
    pem = readFileSync(path);
  } catch (error) {
    throw new TLSError(`cannot read ${option} ${path} (${error.code ?? error.message}): ` +
      `pass ${option} (${variable}) the path of a PEM file this process may read`, { cause: error });
  }
  if (!new RegExp(`-----BEGIN [A-Z0-9 ]*${kind}-----`).test(pem.toString("latin1"))) {
    throw new TLSError(`${option} ${path} holds no PEM ${kind.toLowerCase()} (no "-----BEGIN …${kind}-----" line): ` +
      `pass ${option} (${variable}) a PEM file of one`);
  }
  return pem;
}

/**
 * Opens the TLS socket. The broker's certificate is checked against `caFile` (else Node's trust store) and
 * against the host: Node checks the name it connects to, and an IP's certificate carries an IP SAN. SNI is
 * only sent for a name, since RFC 6066 does not allow an IP address there (Node warns when one is set).
 */
function secureSocket(host, port, { caFile, certFile, keyFile }) {
  const options = { host, port, servername: net.isIP(host) ? undefined : host };
  if (caFile) options.ca = readPem(caFile, "caFile", "GANTRY_CA_FILE", "CERTIFICATE");
  if (certFile) options.cert = readPem(certFile, "certFile", "GANTRY_CERT_FILE", "CERTIFICATE");
  if (keyFile) options.key = readPem(keyFile, "keyFile", "GANTRY_KEY_FILE", "PRIVATE KEY");
  try {
    return tls.connect(options);
  } catch (error) {
    // Node builds the secure context at once: a file that is not PEM, or a key not of the certificate, fails here.
    const files = certFile ? `certFile ${certFile} with keyFile ${keyFile}` : `caFile ${caFile}`;
    throw new TLSError(`cannot use ${files} (${error.message}): ` +
      (certFile ? "keyFile must be the unencrypted private key of certFile's certificate" : "it must be a PEM bundle of CA certificates"),
      { cause: error });
  }
}

// Node's codes for a broker certificate that no trusted CA vouches for.
const UNTRUSTED = new Set(["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "CERT_UNTRUSTED", "CERT_SIGNATURE_FAILURE",
  "CERT_REJECTED", "INVALID_CA"]);

/**
 * The TLSError an error of a TLS connection stands for, with what to change; null when it is not about TLS
 * (a refused or reset connection stays a ConnectionLost and is retried). The second argument is what was
 * asked for: {host, port, tls, caFile, certFile}; without `tls` nothing is a TLS failure.
 */
export function tlsFailure(error, { host, port, tls: secure, caFile, certFile } = {}) {
  if (!error || error instanceof TLSError) return error ?? null;
  if (!secure) return null;
  const code = String(error.code ?? "");
  const where = hostPort(host, port);
  const make = (message) => new TLSError(message, { cause: error });
  if (UNTRUSTED.has(code)) {
    return make(caFile
      ? `the broker's certificate is not trusted (${code}): the CA in caFile ${caFile} did not sign it; pass caFile (GANTRY_CA_FILE) the bundle that did`
      : `the broker's certificate is not trusted (${code}): pass caFile (GANTRY_CA_FILE), a PEM bundle of the CA that signed it`);
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return make(`the broker's certificate is not for ${host} (${error.reason ?? error.message}): connect by a name or IP ` +
      "the certificate lists, or give the broker a certificate for this one");
  }
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") {
    return make(`the broker's certificate ${code === "CERT_HAS_EXPIRED" ? "has expired" : "is not valid yet"}: ` +
      "the broker needs a current certificate (or this machine's clock is wrong)");
  }
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST|UNKNOWN_PROTOCOL|RECORD_LAYER_FAILURE/.test(code)) {
    return make(`the broker at ${where} does not speak TLS (${code}): use gantry://${where}, or turn TLS on at the broker`);
  }
  const alert = /^ERR_SSL_.*ALERT_(.+)$/.exec(code)?.[1];
  if (alert === "CERTIFICATE_REQUIRED" || (alert && !certFile && /HANDSHAKE_FAILURE|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNKNOWN_CA|ACCESS_DENIED/.test(alert))) {
    return make(`the broker wants a client certificate (${code}): pass certFile and keyFile (GANTRY_CERT_FILE, GANTRY_KEY_FILE)`);
  }
  if (alert && /CERTIFICATE|UNKNOWN_CA|ACCESS_DENIED|HANDSHAKE_FAILURE/.test(alert)) {
    return make(`the broker refused the client certificate in certFile ${certFile} (${code}): it must be signed by a CA ` +
      "the broker trusts, be valid now, and be meant for clients");
  }
  if (/^ERR_(SSL|TLS|OSSL)_|CERT|CRL|INVALID_PURPOSE|PATH_LENGTH|HOSTNAME_MISMATCH/.test(code)) {
    return make(`TLS with the broker at ${where} failed (${error.message})`);
  }
  return null;
}

const keyOf = (id) => JSON.stringify(id);

export class Connection {
  #socket;
  #pending = new Map(); // JSON of the id → { resolve, reject }
  #chunks = [];
  #partial = 0; // bytes of the line being read so far
  #maxLineBytes;
  #onNotification;
  #onUnmatched;
  #onLine;
  #error = null;
  #address; // {host, port, tls, caFile, certFile}: to word TLS failures
  #heard = false; // whether any byte came yet

  /**
   * Opens a connection. Options: `tls` (true: TLS, with `caFile`, `certFile`, `keyFile` as PEM paths; no env
   * fallbacks here, GantryClient reads those), `maxLineBytes` (longest line read from the broker; longer closes
   * the connection), `connectTimeoutMs` (the TLS handshake included), `onNotification(message)` for lines with
   * `method` and no `id`, `onUnmatched(value, line)` for any other line no pending request waits for (`value` is
   * undefined when the line is not JSON), and `onLine(value, line)`, a raw-line hook that sees every line first,
   * in arrival order. Rejects with TLSError when TLS fails in a way a retry cannot mend, else ConnectionLost.
   */
  static connect(host, port, options = {}) {
    return new Promise((resolve, reject) => {
      let socket;
      try {
        socket = options.tls ? secureSocket(host, port, options) : net.connect({ host, port });
      } catch (error) {
        return reject(error);
      }
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
      const timeoutMs = options.connectTimeoutMs ?? 10000;
      const timer = setTimeout(() => socket.destroy(new Error(options.tls && !socket.connecting
        ? `no TLS handshake within ${timeoutMs} ms; does the broker speak TLS there?` : `no answer within ${timeoutMs} ms`)), timeoutMs);
      const failed = (error) => {
        clearTimeout(timer);
        reject(tlsFailure(error, { host, port, ...options }) ??
          new ConnectionLost(`cannot reach the broker at ${host}:${port} (${error.message}); is gantryd running there?`, { cause: error }));
      };
      socket.once("error", failed);
      // A TLS socket is ready once the broker's certificate has been checked, not at the TCP connect.
      socket.once(options.tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.off("error", failed);
        resolve(new Connection(socket, { ...options, host, port }));
      });
    });
  }

  constructor(socket, { maxLineBytes = 64 << 20, onNotification = () => {}, onUnmatched = () => {}, onLine, ...address } = {}) {
    this.#socket = socket;
    this.#address = address;
    this.#maxLineBytes = maxLineBytes;
    this.#onNotification = onNotification;
    this.#onUnmatched = onUnmatched;
    this.#onLine = onLine;
    /** Resolves (with the reason, or null) once the connection is closed, by either side. */
    this.closed = new Promise((resolve) => socket.once("close", () => resolve(this.#error)));
    socket.on("data", (chunk) => this.#read(chunk));
    // With TLS 1.3 the broker checks a client certificate after the handshake, so its refusal (an alert) comes
    // here, failing hello: it is worded as a TLSError too.
    socket.on("error", (error) => { this.#error ??= tlsFailure(error, this.#address) ?? error; });
    socket.once("close", () => {
      const reason = this.#error ? ` (${this.#error.message})` : "";
      this.#failAll(this.#error instanceof TLSError ? this.#error
        : new ConnectionLost(`the connection to the broker closed${reason}`, { cause: this.#error ?? undefined }));
    });
  }

  get open() {
    return !this.#socket.destroyed && this.#socket.writable && this.#socket.readable;
  }

  /** Sends one request object (it must have an `id`, unique among those in flight) and resolves its response envelope. */
  request(message, line = JSON.stringify(message)) {
    const key = keyOf(message.id);
    return new Promise((resolve, reject) => {
      if (!this.open) return reject(new ConnectionLost("the connection to the broker is closed"));
      if (this.#pending.has(key)) return reject(new Error(`a request with id ${key} is already in flight`));
      this.#pending.set(key, { resolve, reject });
      this.#write(line);
    });
  }

  /** Gives up waiting for the response to `id` (it will reach `onUnmatched` if it still comes). */
  forget(id) {
    this.#pending.delete(keyOf(id));
  }

  /** Writes one raw line (the newline is added), bypassing id matching: for notifications and tests. */
  sendLine(line) {
    if (!this.open) throw new ConnectionLost("the connection to the broker is closed");
    this.#write(line);
  }

  /** Closes the connection; requests still waiting reject with ConnectionLost. */
  close() {
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 1000).unref();
    this.#failAll(new ConnectionLost("the connection was closed by the client"));
  }

  #write(line) {
    this.#socket.write(line + "\n", (error) => { if (error) this.#error ??= error; });
  }

  #read(chunk) {
    if (!this.#heard) {
      this.#heard = true;
      // A TLS record (alert 0x15 or handshake 0x16, version 3.x) where a JSON line should be: the broker wants TLS.
      if (!this.#address.tls && (chunk[0] === 0x15 || chunk[0] === 0x16) && chunk[1] === 0x03) {
        const where = hostPort(this.#address.host, this.#address.port);
        this.#error ??= new TLSError(`the broker at ${where} speaks TLS: use gantrys://${where} (or tls: true), ` +
          "with caFile (GANTRY_CA_FILE) unless a CA in Node's trust store signed its certificate");
        return this.#socket.destroy();
      }
    }
    let start = 0;
    let end;
    while ((end = chunk.indexOf(NEWLINE, start)) !== -1) {
      if (this.#partial + end - start > this.#maxLineBytes) return this.#tooLong();
      const piece = chunk.subarray(start, end);
      const line = this.#chunks.length ? Buffer.concat([...this.#chunks, piece]) : piece;
      this.#chunks = [];
      this.#partial = 0;
      start = end + 1;
      this.#handle(line.toString("utf8"));
      if (this.#socket.destroyed) return;
    }
    if (start < chunk.length) {
      this.#partial += chunk.length - start;
      if (this.#partial > this.#maxLineBytes) return this.#tooLong();
      this.#chunks.push(chunk.subarray(start));
    }
  }

  #tooLong() {
    this.#chunks = [];
    this.#error ??= new Error(`the broker sent a line longer than ${this.#maxLineBytes} bytes`);
    this.#socket.destroy();
  }

  #handle(text) {
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (!text.trim()) return;
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      this.#onLine?.(undefined, text);
      return this.#onUnmatched(undefined, text);
    }
    this.#onLine?.(value, text);
    const isObject = value !== null && typeof value === "object" && !Array.isArray(value);
    if (isObject && "id" in value) {
      const key = keyOf(value.id);
      const waiter = this.#pending.get(key);
      if (waiter) {
        this.#pending.delete(key);
        return waiter.resolve(value);
      }
    } else if (isObject && typeof value.method === "string") {
      return this.#onNotification(value);
    }
    this.#onUnmatched(value, text);
  }

  #failAll(error) {
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    for (const { reject } of waiting) reject(error);
  }
}
