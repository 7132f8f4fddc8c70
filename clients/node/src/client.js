// GantryClient: one pipelined connection to a broker, re-opened on the next call after it drops.
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { Connection, hostPort, parseAddress } from "./connection.js";
import { ConnectionLost, RPCError, RequestTooLarge, TLSError } from "./errors.js";
import { Hooks, reportFatal, runAfter, runAround, runBefore } from "./hooks.js";
import { tracingProvider, withTraceContext } from "./tracing.js";

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
 * The PEM paths of a TLS client: each option, else its env variable. A key from the environment goes only with
 * the certificate from the environment, and the two come together or not at all: checked here rather than at
 * the first call, since a half-given client certificate is a mistake in the program or its environment. (The
 * files themselves are read at each connection, so renewed ones are used.)
 */
function tlsFiles({ caFile, certFile, keyFile }) {
  const env = (name) => process.env[name] || undefined;
  caFile ??= env("GANTRY_CA_FILE");
  if (certFile == null) {
    certFile = env("GANTRY_CERT_FILE");
    keyFile ??= certFile ? env("GANTRY_KEY_FILE") : undefined;
  }
  if (certFile && !keyFile) throw new TypeError("A client certificate needs its key: certFile is set but keyFile (GANTRY_KEY_FILE) is not.");
  if (keyFile && !certFile) throw new TypeError("A client key needs its certificate: keyFile is set but certFile (GANTRY_CERT_FILE) is not.");
  return { caFile, certFile, keyFile };
}

/**
 * A client of one broker. Every method returns a Promise; calls share one connection and may be in flight
 * together. Rejects with RPCError (the broker refused, e.g. -32001 unauthorized for a bad token) or
 * ConnectionLost (the connection went away; its subclass TLSError when TLS cannot work as configured).
 * Emits `notification` (method, message) for notifications the broker sends (`worker.quiet`, `worker.stop`),
 * `connect` (hello's result) on each (re)connection and `disconnect` when a connection drops.
 */
export class GantryClient extends EventEmitter {
  #connection = null;
  #opening = null;
  #nextId = 0;
  #generation = 0;
  // Private fields, so that util.inspect, console.log and JSON.stringify of a client never show the token.
  #token;
  #tlsFiles; // {caFile, certFile, keyFile}
  #tracing; // the trace context provider, or null

  /**
   * @param {object} options
   * @param {string} [options.url] `host:port`, `gantry://[TOKEN@]host:port` (plain TCP) or `gantrys://[TOKEN@]host:port`
   *   (TLS) (default `$GANTRY_URL`, else 127.0.0.1:7440)
   * @param {string} [options.token] the token sent in hello; before the URL's, which comes before `$GANTRY_TOKEN`
   * @param {boolean} [options.tls] true: TLS for a `host:port` or `gantry://` URL too
   * @param {string} [options.caFile] PEM bundle of the CA that signed the broker's certificate (default
   *   `$GANTRY_CA_FILE`, else Node's trust store)
   * @param {string} [options.certFile] client certificate (PEM) for a broker that asks for one (default `$GANTRY_CERT_FILE`)
   * @param {string} [options.keyFile] its private key (PEM) (default `$GANTRY_KEY_FILE`, with `$GANTRY_CERT_FILE` only)
   * @param {string} [options.name] the `client` name in hello, for the broker's logs
   * @param {object} [options.worker] the `worker` of hello ({id, queues, concurrency, handlers}); Worker sets it
   * @param {number} [options.patienceMs] how long to keep trying to connect, and to resend a request refused
   *   with storage_unavailable that changed nothing (default 30 s; 0 tries once)
   * @param {number} [options.maxLineBytes] longest line accepted from the broker (default 64 MiB)
   * @param {number} [options.maxRequestBytes] longest request sent (default 1 MiB, the broker's default limit)
   * @param {number} [options.connectTimeoutMs] how long one connection attempt may take, TLS handshake included (10 s)
   * @param {Hooks|Object<string, function|function[]>} [options.hooks] enqueue hooks and onFatalError (a Hooks may
   *   be shared with a Worker); more can be added later with `client.hooks.beforeEnqueue(fn)` and the like
   * @param {false|{current?: function, runJob?: function}} [options.tracing] where `meta.traceparent` comes from at
   *   enqueue: by default OpenTelemetry's active span when @opentelemetry/api is installed; false: never set
   */
  constructor({ url = process.env.GANTRY_URL ?? "127.0.0.1:7440", token, tls, caFile, certFile, keyFile,
    name = `gantry-node ${VERSION}`, worker, patienceMs = 30_000, maxLineBytes = 64 << 20, maxRequestBytes = 1 << 20,
    connectTimeoutMs = 10_000, hooks, tracing } = {}) {
    super();
    /** The client's hooks (see Hooks): it fires beforeEnqueue, aroundEnqueue, afterEnqueue and onFatalError. */
    this.hooks = Hooks.from(hooks);
    this.#tracing = tracingProvider(tracing);
    const address = parseAddress(url);
    this.host = address.host;
    this.port = address.port;
    if (token !== undefined && token !== null && !(typeof token === "string" && token !== "")) {
      // The value is not shown: it may be a secret.
      throw new TypeError("A token must be a non-empty string (or undefined: the URL's, else $GANTRY_TOKEN).");
    }
    // option > URL > env; an empty GANTRY_TOKEN (or `gantry://@host`) means none.
    this.#token = token || address.token || process.env.GANTRY_TOKEN || undefined;
    if (tls === false && address.tls) {
      throw new TypeError("tls: false contradicts a gantrys:// URL; use gantry:// for a plain connection.");
    }
    /** Whether connections use TLS (gantrys:// or `tls: true`). */
    this.tls = Boolean(tls || address.tls);
    this.#tlsFiles = this.tls ? tlsFiles({ caFile, certFile, keyFile }) : null;
    if (!this.tls) {
      // Certificate files asked for on a plain connection: refused rather than sending in clear what the caller
      // meant to protect. The env variables are only read for TLS, so they may stay set for plain brokers too.
      const given = Object.entries({ caFile, certFile, keyFile }).filter(([, value]) => value != null).map(([name]) => name);
      if (given.length) throw new TypeError(`${given.join(" and ")} given for a plain connection: use a gantrys:// URL or tls: true.`);
    }
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
      let greeting = false; // connected, waiting for hello's answer
      try {
        connection = await Connection.connect(this.host, this.port, {
          ...(this.tls ? { tls: true, ...this.#tlsFiles } : {}),
          maxLineBytes: this.maxLineBytes,
          connectTimeoutMs: this.connectTimeoutMs,
          onNotification: (message) => this.emit("notification", message.method, message),
        });
        // hello first on every connection, so the broker knows who this is (and a worker's queues and handlers).
        // The token rides in hello: a broker with tokens refuses everything else until hello has succeeded.
        const hello = { client: this.name, protocol: 1, ...(this.#token ? { token: this.#token } : {}),
          ...(this.worker ? { worker: this.worker } : {}) };
        greeting = true;
        const session = await this.#exchange(connection, "hello", hello).catch((error) => {
          if (error instanceof RPCError && error.code === -32001 && !this.#token) {
            error.message += ` (no token was sent: pass token, put it in the URL as ${this.tls ? "gantrys" : "gantry"}://TOKEN@host:port, ` +
              "or set GANTRY_TOKEN)";
          }
          throw error;
        });
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
        // A refused hello (an RPCError such as -32001 unauthorized) or a TLS failure fails the calls waiting on
        // this connection at once: trying again would only meet the same refusal.
        const retry = error instanceof ConnectionLost && !(error instanceof TLSError) && generation === this.#generation &&
          Date.now() + delay <= deadline;
        if (!retry) throw greeting && generation === this.#generation ? this.#hint(error) : error;
        await sleep(delay);
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  /**
   * A connection dropped before hello was answered, not refused: a TLS broker hangs up on plain JSON, and one
   * that requires a client certificate may hang up on a client without one, neither always saying why.
   */
  #hint(error) {
    if (!(error instanceof ConnectionLost) || error instanceof TLSError) return error;
    const where = hostPort(this.host, this.port);
    if (!this.tls) error.message += ` before hello was answered; if the broker serves TLS, use gantrys://${where}`;
    else if (!this.#tlsFiles.certFile) {
      error.message += " before hello was answered; if the broker requires a client certificate, pass certFile and keyFile " +
        "(GANTRY_CERT_FILE, GANTRY_KEY_FILE)";
    }
    return error;
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
   * Runs the enqueue hooks, and sets `meta.traceparent` from the current span (see the `tracing` option).
   */
  async enqueue(type, args = [], options = {}) {
    return (await this.#enqueue([{ type, args, options: { ...options } }], false))[0];
  }

  /**
   * Enqueues all jobs or none: `jobs` is [{type, args, ...options}]. Resolves the ids in order. Each job goes
   * through the enqueue hooks on its own (an around hook's next() resolves that job's id), all in one request.
   */
  async enqueueBatch(jobs) {
    return this.#enqueue(jobs.map(({ type, args, ...options }) => ({ type, args, options })), true);
  }

  /**
   * Every enqueue path: beforeEnqueue for each job, then each job's aroundEnqueue hooks nested one inside the
   * other around the one request, then afterEnqueue for each. A before or around hook that throws rejects the
   * enqueue (nothing is sent); an after hook that throws does not, as the jobs are committed by then.
   */
  async #enqueue(jobs, batch) {
    const hooks = this.hooks;
    const context = (job) => ({ job, client: this });
    if (hooks.has("beforeEnqueue")) {
      for (const job of jobs) await runBefore(hooks, "beforeEnqueue", [job], context(job));
    }
    const send = async () => {
      // Read inside the around hooks, so that a span one of them starts is the jobs' parent.
      const trace = await this.#traceContext();
      const wire = jobs.map((job) => {
        if (trace) job.options = withTraceContext(job.options, trace);
        return { type: job.type, args: job.args, ...wireParams(job.options) };
      });
      if (batch) return (await this.call("enqueue_batch", { jobs: wire })).ids;
      return [(await this.call("enqueue", wire[0])).id];
    };
    let ids;
    if (!hooks.has("aroundEnqueue")) ids = await send();
    else {
      const around = async (index) => {
        if (index === jobs.length) return send();
        await null; // a fresh stack for each job's hooks: a batch of thousands nests that deep
        let rest;
        const id = await runAround(hooks, "aroundEnqueue", jobs[index], async () => {
          rest = await around(index + 1);
          return rest[index];
        }, context(jobs[index]));
        rest[index] = id;
        return rest;
      };
      ids = await around(0);
    }
    if (hooks.has("afterEnqueue")) {
      for (const [index, job] of jobs.entries()) await runAfter(hooks, "afterEnqueue", [job, ids[index]], context(job));
    }
    return ids;
  }

  /**
   * The current span's {traceparent, tracestate}, or undefined. A provider that throws (or gives no W3C
   * traceparent) is reported to onFatalError and the jobs go without: tracing never stops an enqueue.
   */
  async #traceContext() {
    if (!this.#tracing?.current) return undefined;
    try {
      const trace = await this.#tracing.current();
      if (trace) withTraceContext({}, trace); // throws for a traceparent that is not W3C
      return trace || undefined;
    } catch (error) {
      await reportFatal(this.hooks, error, { source: "tracing", client: this });
      return undefined;
    }
  }

  // ---- working

  /** Leases up to `max` jobs from `queues` (in order), waiting up to `waitMs`. Resolves the jobs (maybe none). */
  async reserve(queues, { max, waitMs, leaseMs } = {}) {
    return (await this.call("reserve", wireParams({ queues: [].concat(queues), max, waitMs, leaseMs }))).jobs;
  }

  /**
   * The job succeeded; `result` is kept with it. Resolves {ok, cancel_requested?}. For a step of an operation
   * (a job whose reserve answer has `operation`): `set` is merged into the operation's globals in the ack's own
   * transaction, and `jumpTo` (a branch name, or {branch, step}) is where the operation goes once this step's
   * place is done. On another job either is refused with -32602, field `set` (or `jump_to`).
   */
  ack(id, result, { set, jumpTo, ...rest } = {}) {
    return this.call("ack", wireParams({ id, result, set, jumpTo, ...rest }));
  }

  /**
   * Several jobs succeeded: one request, one commit on the broker. `ids` are 1 … 10000 distinct jobs this
   * connection holds; `results` maps some of them to their results. A job whose lease is gone does not fail the
   * call: resolves {ok, acked: [ids], lost: [{id, state?}], cancel_requested_ids?}, `ok` false when some are lost
   * (`state` absent when there is no such job). A broker older than `ids` refuses with -32602, field `ids`.
   */
  ackMany(ids, { results } = {}) {
    return this.call("ack", results === undefined ? { ids: [].concat(ids) } : { ids: [].concat(ids), results });
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

  // ---- operations: named steps, each a job, sharing globals

  /**
   * Starts an operation at the first step of `branches.main`. `branches` maps branch names to their steps: a
   * job type (`"charge.card"`), `{type, queue, priority, max_attempts, timeout_ms, args}` (sent as they are), or
   * `{parallel: [step, …]}` (run at once; the next place starts once all completed). Options: `globals` (the
   * object the steps share), `queue` (of every step that names none; default "default"), `key` (the same name
   * and key answer the operation started before, `created: false`). Resolves {id, state, created}.
   */
  startOperation(name, branches, { globals, queue, key } = {}) {
    return this.call("operations.start", wireParams({ name, branches, globals, queue, key }));
  }

  /** The operation with its plan (`branches`) and every step (`steps`: state, job_id, attempts, times, error). */
  getOperation(id) { return this.call("operations.get", { id }); }
  /**
   * Operations newest first: filter {name, state, globals (those containing it), limit, cursor}. Resolves
   * {operations, next_cursor?} (without `branches` and `steps`).
   */
  listOperations(filter = {}) { return this.call("operations.list", wireParams(filter)); }
  /**
   * Resumes a failed or cancelled operation at the step that did not complete (completed steps do not run
   * again); `{from: "start"}` runs it again from main's first step with its first globals (a completed one too).
   * Resolves {id, state, job_ids}.
   */
  retryOperation(id, { from } = {}) { return this.call("operations.retry", wireParams({ id, from })); }
  /** Cancels its waiting steps and asks its running ones to stop. Resolves {id, state, cancelled, stopping}. */
  cancelOperation(id) { return this.call("operations.cancel", { id }); }

  // ---- events: something happened; every matching subscription starts its job or operation

  /**
   * Publishes an event of `type` (like `order.paid`; not ending in `*`) with `payload` (any JSON; default {}):
   * recorded, and every active subscription whose pattern and filter match starts its target, in one commit.
   * Options: `key` (another publish of it within `dedupeMs`, default 24 h, answers the first event with
   * `duplicate: true` and starts nothing). Resolves {id, duplicate, triggered: [{subscription | package, job_id |
   * operation_id, skipped?}]}: a package whose `triggers.events` names the type comes without `subscription`, and
   * `skipped` says why a package target started nothing.
   */
  publish(type, payload, { key, dedupeMs } = {}) {
    return this.call("events.publish", wireParams({ type, payload, key, dedupeMs }));
  }

  /**
   * The event: {id, type, payload, key?, replay_of?, published_at, triggered: [{subscription, job_id |
   * operation_id, state}]}, each `state` the job's or operation's now (`deleted` once cleaned up).
   */
  getEvent(id) { return this.call("events.get", { id }); }
  /**
   * Events newest first: filter {type (exact, or `prefix.*`), since (Date or string), limit, cursor}. Resolves
   * {events, next_cursor?}.
   */
  listEvents(filter = {}) { return this.call("events.list", wireParams(filter)); }
  /** Publishes the event's type and payload again as a new event (`replay_of` names it; never deduplicated). Resolves as publish. */
  replayEvent(id) { return this.call("events.replay", { id }); }

  /**
   * Creates or replaces the subscription `name`: events matching `event` (a type, `prefix.*` or `*`) and, with
   * `filter`, whose payload contains it, start `target`: a job {type, queue, args (default "$payload": the
   * event's payload), priority, max_attempts}, {operation: {name, branches, queue, globals}} (its globals get
   * `event: {id, type, payload}`) or {package, config} (an execution of the package, `config` overriding keys of
   * its config); sent as it is. Resolves {subscription, created}.
   */
  upsertSubscription(name, event, target, { filter } = {}) {
    return this.call("subscriptions.upsert", wireParams({ name, event, filter, target }));
  }

  /** Every subscription, by name: [{name, event, filter?, target, paused, source, created_at, updated_at}]. */
  async listSubscriptions() { return (await this.call("subscriptions.list")).subscriptions; }
  /** Resolves {deleted: true}; -32002 not_found when there is none. */
  deleteSubscription(name) { return this.call("subscriptions.delete", { name }); }
  /** Events start nothing through it until resumed. Resolves the subscription (`paused: true`). */
  pauseSubscription(name) { return this.call("subscriptions.pause", { name }); }
  /** Resolves the subscription (`paused: false`). */
  resumeSubscription(name) { return this.call("subscriptions.resume", { name }); }

  // ---- packages: a named list of steps with a config its steps read; each run is an execution (an operation)

  /**
   * Creates or replaces the package `name`. `steps` are written as an operation's (a job type, a step object sent
   * as it is, or {parallel: [step, …]}), one branch. Options: `description`, `config` (an object its steps read as
   * `job.package.config`; sent as it is), `triggers` ({cron, timezone, events, manual}), `active` (false: it
   * starts nothing), `queue` (of every step that names none). Executions started before keep what they started
   * with. Resolves {package, created}.
   */
  upsertPackage(name, steps, { description, config, triggers, active, queue } = {}) {
    return this.call("packages.upsert", wireParams({ name, description, steps, config, triggers, active, queue }));
  }

  /** Every package, by name: [{name, description?, steps, config, triggers, active, queue, source, next_run_at?, …}]. */
  async listPackages() { return (await this.call("packages.list")).packages; }
  /** The package; -32002 not_found when there is none. */
  getPackage(name) { return this.call("packages.get", { name }); }
  /** Resolves {deleted: true}; its executions stay. -32008 wrong_state while a subscription targets it (`data.subscriptions`). */
  deletePackage(name) { return this.call("packages.delete", { name }); }

  /**
   * Starts an execution by hand; `config` overrides keys of the package's config for this run only (a key the
   * package lacks is refused with -32602, field `config.<key>`, rather than run with the default). -32008 when
   * the package is inactive or not `triggers.manual`. Resolves {id (the execution's operation id), package, state}.
   */
  runPackage(name, { config } = {}) { return this.call("packages.run", wireParams({ name, config })); }

  /**
   * The package's executions, newest first: {limit, cursor}. Resolves {executions, next_cursor?}, each {id,
   * package, state, trigger, config, globals, error?, created_at, finished_at?, saved?, steps: [each step's last
   * run: {index, member?, type, state, job_id?, attempts, result?, error?, …}]}.
   */
  listExecutions(name, { limit, cursor } = {}) {
    return this.call("packages.executions", wireParams({ name, limit, cursor }));
  }

  /**
   * Keeps the execution `id` for good under `name` (unique within its package; saving again renames it): cleanup
   * and retention never remove it. Resolves the execution with `saved: {name, description?, saved_at}`.
   */
  saveExecution(id, name, { description } = {}) {
    return this.call("executions.save", wireParams({ id, name, description }));
  }

  /** The saved executions, newest saved first, of one package (`{package: name}`) or all: [execution]. */
  async listSavedExecutions({ package: name } = {}) {
    return (await this.call("executions.saved", wireParams({ package: name }))).executions;
  }
}

export { failureOf };
