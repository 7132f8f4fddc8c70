// One TCP connection to a broker: newline framing, responses matched to pending requests by id, broker
// notifications told apart from responses. GantryClient builds on it; tests use it raw.
import net from "node:net";
import { ConnectionLost } from "./errors.js";

const NEWLINE = 0x0a;

/** Reads `host:port`, `gantry://host:port` or `[::1]:port`; the port defaults to 7440. */
export function parseAddress(url) {
  const text = String(url).replace(/^gantry:\/\//, "").replace(/\/+$/, "");
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+))(?::(\d+))?$/.exec(text);
  const port = match?.[3] === undefined ? 7440 : Number(match[3]);
  if (!match || !(port >= 1 && port <= 65535)) {
    throw new TypeError(`The broker address must look like 127.0.0.1:7440 or gantry://host:port (got ${url}).`);
  }
  return { host: match[1] ?? match[2], port };
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

  /**
   * Opens a connection. Options: `maxLineBytes` (longest line read from the broker; longer closes the
   * connection), `connectTimeoutMs`, `onNotification(message)` for lines with `method` and no `id`,
   * `onUnmatched(value, line)` for any other line no pending request waits for (`value` is undefined when the
   * line is not JSON), and `onLine(value, line)`, a raw-line hook that sees every line first, in arrival order.
   */
  static connect(host, port, options = {}) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true, keepAlive: true });
      const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${options.connectTimeoutMs ?? 10000} ms`)),
        options.connectTimeoutMs ?? 10000);
      const failed = (error) => {
        clearTimeout(timer);
        reject(new ConnectionLost(`cannot reach the broker at ${host}:${port} (${error.message}); is gantryd running there?`, { cause: error }));
      };
      socket.once("error", failed);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.off("error", failed);
        resolve(new Connection(socket, options));
      });
    });
  }

  constructor(socket, { maxLineBytes = 64 << 20, onNotification = () => {}, onUnmatched = () => {}, onLine } = {}) {
    this.#socket = socket;
    this.#maxLineBytes = maxLineBytes;
    this.#onNotification = onNotification;
    this.#onUnmatched = onUnmatched;
    this.#onLine = onLine;
    /** Resolves (with the reason, or null) once the connection is closed, by either side. */
    this.closed = new Promise((resolve) => socket.once("close", () => resolve(this.#error)));
    socket.on("data", (chunk) => this.#read(chunk));
    socket.on("error", (error) => { this.#error ??= error; });
    socket.once("close", () => {
      const reason = this.#error ? ` (${this.#error.message})` : "";
      this.#failAll(new ConnectionLost(`the connection to the broker closed${reason}`, { cause: this.#error ?? undefined }));
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
