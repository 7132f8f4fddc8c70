// GantryClient: one pipelined connection to a broker, re-opened on the next call after it drops.
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { Connection, parseAddress } from "./connection.js";
import { ConnectionLost, RPCError, RequestTooLarge } from "./errors.js";

const VERSION = "0.1.0";

/** `{ queueTimeoutMs: 5 }` → `{ queue_timeout_ms: 5 }`; Dates become RFC 3339 strings; undefined is left out. */
export function wireParams(options = {}) {
  const params = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    params[key.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase())] = value instanceof Date ? value.toISOString() : value;
  }
  return params;
}

function failureOf(error) {
  if (!(error instanceof Error)) {
    return error && typeof error === "object" && typeof error.message === "string" ? error : { message: String(error) };
  }
  const kind = error.name && error.name !== "Error" ? error.name : error.constructor?.name || "Error";
  const frames = String(error.stack ?? "").split("\n").map((l) => l.trim()).filter((l) => l.startsWith("at "));
  return { message: error.message || String(error), kind, ...(frames.length ? { backtrace: frames } : {}) };
}

/**
 * A client of one broker. Every method returns a Promise; calls share one connection and may be in flight
 * together. Rejects with RPCError (the broker refused) or ConnectionLost (the connection went away).
 * Emits `notification` (method, message) for notifications the broker sends (`worker.quiet`, `worker.stop`),
 * `connect` (hello's result) on each (re)connection and `disconnect` when a connection drops.
 */
export class GantryClient extends EventEmitter {
  #connection = null;
  #opening = null;
  #nextId = 0;
  #generation = 0;

  /**
   * @param {object} options
   * @param {string} [options.url] `host:port` or `gantry://host:port` (default `$GANTRY_URL`, else 127.0.0.1:7440)
   * @param {string} [options.name] the `client` name in hello, for the broker's logs
   * @param {object} [options.worker] the `worker` of hello ({id, queues, concurrency, handlers}); Worker sets it
   * @param {number} [options.patienceMs] how long to keep trying to connect, and to resend a request refused
   *   with storage_unavailable that changed nothing (default 30 s; 0 tries once)
   * @param {number} [options.maxLineBytes] longest line accepted from the broker (default 64 MiB)
   * @param {number} [options.maxRequestBytes] longest request sent (default 1 MiB, the broker's default limit)
   */
  constructor({ url = process.env.GANTRY_URL ?? "127.0.0.1:7440", name = `gantry-node ${VERSION}`, worker,
    patienceMs = 30_000, maxLineBytes = 64 << 20, maxRequestBytes = 1 << 20, connectTimeoutMs = 10_000 } = {}) {
    super();
    Object.assign(this, parseAddress(url));
    this.name = name;
    this.worker = worker;
    this.patienceMs = patienceMs;
    this.maxLineBytes = maxLineBytes;
    this.maxRequestBytes = maxRequestBytes;
    this.connectTimeoutMs = connectTimeoutMs;
    /** hello's result on the current connection: {broker, protocol, session_id}. */
    this.session = null;
    /** How many connections this client has opened. */
    this.connections = 0;
  }

  // ---- the wire

  /** Calls any method with its params object; resolves its result. Resends storage_unavailable refusals with `applied: false`. */
  async call(method, params) {
    const deadline = Date.now() + this.patienceMs;
    let delay = 100;
    for (;;) {
      try {
        return await this.#callOnce(method, params);
      } catch (error) {
        const unapplied = error instanceof RPCError && error.code === -32004 && error.data?.applied === false;
        if (!unapplied || Date.now() + delay > deadline) throw error;
        await sleep(delay);
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  async #callOnce(method, params) {
    const connection = await this.#connect();
    return this.#exchange(connection, method, params);
  }

  async #exchange(connection, method, params) {
    const message = { jsonrpc: "2.0", id: ++this.#nextId, method };
    if (params !== undefined && params !== null) message.params = params;
    const line = JSON.stringify(message);
    const bytes = Buffer.byteLength(line);
    if (bytes > this.maxRequestBytes) throw new RequestTooLarge(bytes, this.maxRequestBytes);
    const response = await connection.request(message, line);
    if (response.error) throw new RPCError(response.error, method);
    return response.result;
  }

  #connect() {
    if (this.#connection?.open) return Promise.resolve(this.#connection);
    this.#opening ??= this.#open().finally(() => { this.#opening = null; });
    return this.#opening;
  }

  async #open() {
    const generation = this.#generation;
    const deadline = Date.now() + this.patienceMs;
    let delay = 100;
    for (;;) {
      let connection;
      try {
        connection = await Connection.connect(this.host, this.port, {
          maxLineBytes: this.maxLineBytes,
          connectTimeoutMs: this.connectTimeoutMs,
          onNotification: (message) => this.emit("notification", message.method, message),
        });
        // hello first on every connection, so the broker knows who this is (and a worker's queues and handlers).
        const hello = { client: this.name, protocol: 1, ...(this.worker ? { worker: this.worker } : {}) };
        const session = await this.#exchange(connection, "hello", hello);
        if (generation !== this.#generation) throw new ConnectionLost("the client was closed while connecting");
        this.connections += 1;
        this.session = session;
        this.#connection = connection;
        connection.closed.then((reason) => {
          if (this.#connection !== connection) return;
          this.#connection = null;
          this.emit("disconnect", reason);
        });
        this.emit("connect", session);
        return connection;
      } catch (error) {
        connection?.close();
        const retry = error instanceof ConnectionLost && generation === this.#generation && Date.now() + delay <= deadline;
        if (!retry) throw error;
        await sleep(delay);
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  /** Closes the connection (requests in flight reject with ConnectionLost); a later call opens a new one. */
  close() {
    this.#generation += 1;
    this.#connection?.close();
    this.#connection = null;
    this.session = null;
  }

  // ---- producing

  /**
   * Enqueues one job and resolves its id once committed. `options`: queue, priority, runAt (Date or string),
   * delayMs, maxAttempts, timeoutMs, expiresAt, queueTimeoutMs, uniqueKey, tags, meta (snake_case works too).
   */
  async enqueue(type, args = [], options = {}) {
    return (await this.call("enqueue", { type, args, ...wireParams(options) })).id;
  }

  /** Enqueues all jobs or none: `jobs` is [{type, args, ...options}]. Resolves the ids in order. */
  async enqueueBatch(jobs) {
    return (await this.call("enqueue_batch", { jobs: jobs.map((job) => wireParams(job)) })).ids;
  }

  // ---- working

  /** Leases up to `max` jobs from `queues` (in order), waiting up to `waitMs`. Resolves the jobs (maybe none). */
  async reserve(queues, { max, waitMs, leaseMs } = {}) {
    return (await this.call("reserve", wireParams({ queues: [].concat(queues), max, waitMs, leaseMs }))).jobs;
  }

  /** The job succeeded; `result` is kept with it. Resolves {ok, cancel_requested?}. */
  ack(id, result) {
    return this.call("ack", result === undefined ? { id } : { id, result });
  }

  /**
   * The attempt failed. `error` is an Error (its name and stack are sent) or {message, kind, backtrace}.
   * Options: retry (default true), retryInMs. Resolves {state, next_run_at?}.
   */
  nack(id, error, { retry, retryInMs } = {}) {
    return this.call("nack", wireParams({ id, error: failureOf(error), retry, retryInMs }));
  }

  /** Pushes out leases held by this connection. Resolves {leases: [{id, lease_expires_at, cancel_requested?}], lost}. */
  extend(ids, { leaseMs } = {}) {
    return this.call("extend", wireParams({ ids: [].concat(ids), leaseMs }));
  }

  // ---- inspecting and operating

  /** The whole job: state, attempts, errors, result. */
  job(id) { return this.call("jobs.get", { id }); }
  stats() { return this.call("stats"); }
  /** Jobs newest first: filter {queue, state, type, tag, limit, cursor}. Resolves {jobs, next_cursor?}. */
  listJobs(filter = {}) { return this.call("jobs.list", wireParams(filter)); }
  retryJob(id) { return this.call("jobs.retry", { id }); }
  cancelJob(id) { return this.call("jobs.cancel", { id }); }
  discardJob(id) { return this.call("jobs.discard", { id }); }
  /** Deletes finished jobs: {olderThanMs, states, queue, limit}. Resolves {deleted, more}. */
  cleanup(options) { return this.call("cleanup", wireParams(options)); }
  pauseQueue(queue) { return this.call("queues.pause", { queue }); }
  resumeQueue(queue) { return this.call("queues.resume", { queue }); }
  async listQueues() { return (await this.call("queues.list")).queues; }
  async listWorkers() { return (await this.call("workers.list")).workers; }
  /** Tells workers to quiet: `{id}` (worker or session id) or `{all: true}`. Resolves how many were told. */
  async quietWorkers(target) { return (await this.call("workers.quiet", target)).workers; }
  /** Tells workers to hand back their jobs and exit: `{id}` or `{all: true}`. Resolves how many were told. */
  async stopWorkers(target) { return (await this.call("workers.stop", target)).workers; }
}

export { failureOf };
