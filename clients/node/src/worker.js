// Worker: reserves jobs with a long poll, runs their handlers with a concurrency limit, acks, nacks, extends
// leases, and obeys the broker's worker.quiet / worker.stop.
import { EventEmitter } from "node:events";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { AckBatcher } from "./ack_batcher.js";
import { GantryClient } from "./client.js";
import { redactAddress } from "./connection.js";
import { RPCError, TLSError } from "./errors.js";
import { Hooks, reportFatal, runAfter, runAround, runBefore } from "./hooks.js";
import { jobTraceParent, tracingProvider } from "./tracing.js";

const named = (name, message) => Object.assign(new Error(message), { name });
const isPlainObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * What a step of an operation resolves to steer it: `set` (merged into the operation's globals with the ack),
 * `jumpTo` (a branch name, or {branch, step}: where the operation goes once this step's place is done) and
 * `result` (kept as the job's result). The worker acks such a job on its own (`ack` with `id`, `set`,
 * `jump_to`), never in a batch with others.
 *
 *     "charge.card": async (job) => new StepResult({ set: { charge_id: "ch_1" }, jumpTo: job.args.refund ? "refund" : undefined })
 */
export class StepResult {
  /**
   * @param {object} outcome
   * @param {object} [outcome.set] globals to merge into the operation's
   * @param {string|{branch: string, step?: string}} [outcome.jumpTo] where the operation goes next (`jump_to` works too)
   * @param {*} [outcome.result] the job's result
   */
  constructor({ set, jumpTo, jump_to: jumpToWire, result } = {}) {
    jumpTo ??= jumpToWire;
    if (set !== undefined && !isPlainObject(set)) throw new TypeError("StepResult's set must be an object of globals to merge.");
    if (jumpTo !== undefined && typeof jumpTo !== "string" && !(isPlainObject(jumpTo) && typeof jumpTo.branch === "string")) {
      throw new TypeError('StepResult\'s jumpTo must be a branch name or {branch, step}, e.g. "refund" or {branch: "main", step: "email.send"}.');
    }
    this.set = set;
    this.jumpTo = jumpTo;
    this.result = result;
  }

  /** Whether it steers the operation (so its ack must go alone). */
  get steers() {
    return this.set !== undefined || this.jumpTo !== undefined;
  }
}

/**
 * Runs `handlers[job.type](job)` for jobs from `queues` (taken in order), up to `concurrency` at once.
 * A handler gets the reserved job (`id`, `type`, `args`, `queue`, `priority`, `attempt`, `max_attempts`,
 * `meta`, `enqueued_at`, `lease_expires_at`, for a step of an operation `operation`: {id, name, branch,
 * step, index, globals}, and for a step of a package's execution also `package`: {name, config}) plus
 * `signal`, an AbortSignal aborted when the job must stop (`signal.reason.name`: `WorkerStopped`,
 * `JobCancelled` or `LeaseLost`). What it resolves is acked as the job's result (jobs that
 * finish while an ack is on the way are acked together, in one `ack` with `ids`; see AckBatcher); a
 * StepResult with `set` or `jumpTo` is acked alone, with them (a StepResult the broker refuses buries the job). A
 * rejection nacks the job (retried with backoff), or buries it when the error is a PermanentError (or has
 * `permanent: true`).
 *
 * Events: `completed` (job, result, stepResult?), `failed` (job, error, nackResult), `handedBack` (job),
 * `cancelled` (job), `lost` (job), `quiet`, `stopping`, `warning` (error, job?).
 *
 * Hooks (`hooks` option, or `worker.hooks.beforeJob(fn)` and the like; see Hooks): beforeJob, aroundJob,
 * afterJob and onJobFailure around each job, inside the job's span (see the `tracing` option); beforeStartup,
 * afterStartup, beforeShutdown and afterShutdown around `run()`; onFatalError for a hook that throws and for
 * the error that ends `run()`. A beforeJob or aroundJob hook that throws fails the job as its handler would
 * (onJobFailure, then a nack with that error); an afterJob or onJobFailure hook that throws changes nothing. A
 * beforeStartup hook that throws makes `run()` reject before connecting; the other lifecycle hooks' errors are
 * only reported.
 */
export class Worker extends EventEmitter {
  #client = null;
  #acks = null; // the client's AckBatcher: jobs that finish together are acked in one request
  #jobs = new Map(); // job id → { job, controller, reason, done }
  #quiet = false;
  #stopping = false; // reserve nothing more
  #handingBack = false; // and hand running jobs back
  #wake = null;
  #stopController = null; // aborted once stopping begins
  #run = null;
  #extending = false;
  #connect; // the client's url, token and TLS options; private, so that inspecting a worker shows no token
  #tracing; // the trace context provider, or null

  /**
   * @param {object} options
   * @param {string} [options.url] broker address (default `$GANTRY_URL`, else 127.0.0.1:7440); `gantrys://` for TLS
   * @param {string} [options.token] the token (else the URL's, else `$GANTRY_TOKEN`); needs the worker role
   * @param {boolean} [options.tls] true: TLS for a `host:port` URL too
   * @param {string} [options.caFile] PEM bundle of the CA that signed the broker's certificate (`$GANTRY_CA_FILE`)
   * @param {string} [options.certFile] client certificate, PEM (`$GANTRY_CERT_FILE`)
   * @param {string} [options.keyFile] its private key, PEM (`$GANTRY_KEY_FILE`)
   * @param {string[]} options.queues queues to reserve from, most important first
   * @param {number} [options.concurrency] jobs run at once (default 10)
   * @param {Object<string, function>} [options.handlers] job type → async (job) => result (or a StepResult)
   * @param {string} [options.id] the worker's name for operators (default host:pid)
   * @param {number} [options.leaseMs] lease asked for at reserve; running jobs are extended every third (default 60 s)
   * @param {number} [options.waitMs] long-poll length of each reserve (default 2 s)
   * @param {Hooks|Object<string, function|function[]>} [options.hooks] job and lifecycle hooks, onFatalError (a
   *   Hooks may be shared with a GantryClient)
   * @param {false|{runJob?: function}} [options.tracing] starts each job's span from its `meta.traceparent`:
   *   by default OpenTelemetry's when @opentelemetry/api is installed; false: none
   */
  constructor({ url, token, tls, caFile, certFile, keyFile, queues, concurrency = 10, handlers = {},
    id = `${os.hostname()}:${process.pid}`, leaseMs = 60_000, waitMs = 2000, name = "gantry-node-worker 0.1.0", patienceMs,
    hooks, tracing } = {}) {
    super();
    /** The worker's hooks (see Hooks). */
    this.hooks = Hooks.from(hooks);
    this.#tracing = tracingProvider(tracing);
    queues = [].concat(queues ?? []);
    if (!queues.length) throw new TypeError("A worker needs at least one queue to reserve from.");
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new TypeError(`A worker's concurrency must be an integer ≥ 1 (got ${concurrency}).`);
    if (!(leaseMs >= 1000)) throw new TypeError("A worker's lease must be at least 1000 ms.");
    this.#connect = { url, token, tls, caFile, certFile, keyFile };
    Object.assign(this, { queues, concurrency, id, leaseMs, waitMs, name, patienceMs });
    this.handlers = { ...handlers };
  }

  /** The broker address it was given, with any token in it shown as `***`. */
  get url() {
    return this.#connect.url === undefined ? undefined : redactAddress(this.#connect.url);
  }

  /** Registers the handler for a job type (before `run()`). */
  handle(type, handler) {
    this.handlers[type] = handler;
    return this;
  }

  /** Whether an operator told it to quiet: it finishes what it holds and reserves nothing until stopped. */
  get quiet() { return this.#quiet; }
  /** The jobs running now. */
  get running() { return [...this.#jobs.values()].map((entry) => entry.job); }
  /** The worker's client (while running), e.g. for its `session`. */
  get client() { return this.#client; }

  /**
   * Works until stopped (`stop()`, `shutdown()` or the broker's `worker.stop`); resolves once everything is
   * handed over. Rejects when the broker refuses the worker for good (an RPCError that is not retryable, e.g. an
   * invalid queue name, -32001 unauthorized or -32009 forbidden) or TLS cannot work (TLSError); while the broker
   * is unreachable it keeps trying (`warning` events).
   */
  run() {
    this.#run ??= this.#work().finally(() => { this.#run = null; });
    return this.#run;
  }

  /** Graceful: reserve nothing more, let running jobs finish; resolves when `run()` has ended. */
  shutdown() {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#stopController?.abort();
      this.#poke();
    }
    return this.#run ?? Promise.resolve();
  }

  /** Reserve nothing more, abort running handlers and hand their jobs back for a retry at once; resolves when `run()` has ended. */
  stop() {
    if (!this.#handingBack) {
      this.#handingBack = true;
      this.emit("stopping");
      for (const entry of this.#jobs.values()) this.#abort(entry, "stop", named("WorkerStopped", "the worker was told to stop"));
    }
    return this.shutdown();
  }

  async #work() {
    this.#quiet = this.#stopping = this.#handingBack = false;
    const hooks = this.hooks;
    const lifecycle = { worker: this };
    const stopController = new AbortController();
    this.#stopController = stopController;
    const client = (this.#client = new GantryClient({
      ...this.#connect, name: this.name, patienceMs: this.patienceMs,
      worker: { id: this.id, queues: this.queues, concurrency: this.concurrency, handlers: Object.keys(this.handlers).map((type) => ({ type })) },
    }));
    this.#acks = new AckBatcher(client);
    client.on("notification", (method) => this.#obey(method));
    let started = null; // afterStartup's hooks, run once connected; jobs start only after them
    client.once("connect", () => { started = runAfter(hooks, "afterStartup", [this], lifecycle); });
    // The client connects at its first call, so this is still before connecting; and fatal: a worker whose
    // setup failed must take no jobs.
    try {
      await runBefore(hooks, "beforeStartup", [this], lifecycle);
    } catch (error) {
      client.close();
      this.#client = null;
      this.#acks = null;
      throw error;
    }
    const heartbeat = setInterval(() => this.#extendLeases(), Math.floor(this.leaseMs / 3));
    let fatal = null;
    try {
      while (!this.#stopping) {
        const free = this.concurrency - this.#jobs.size;
        if (this.#quiet || free <= 0) {
          await this.#nextChange();
          continue;
        }
        let jobs;
        try {
          jobs = await this.#reserve(client, free, stopController.signal);
        } catch (error) {
          if (this.#stopping) break;
          // A queue name the broker refuses, a bad token (-32001), a role or queue the token may not use (-32009),
          // a certificate not trusted: retrying cannot help.
          if ((error instanceof RPCError && !error.retryable) || error instanceof TLSError) {
            fatal = error;
            this.#stopping = true;
            await reportFatal(hooks, error, { source: "worker", worker: this });
            break;
          }
          this.emit("warning", error);
          await sleep(1000, undefined, { signal: stopController.signal }).catch(() => {});
          continue;
        }
        if (started) await started;
        for (const job of jobs) this.#start(job);
      }
      await runAfter(hooks, "beforeShutdown", [this], lifecycle);
      await Promise.allSettled([...this.#jobs.values()].map((entry) => entry.done));
      if (fatal) throw fatal;
    } catch (error) {
      if (error !== fatal) await reportFatal(hooks, error, { source: "worker", worker: this }); // a crash of the loop
      throw error;
    } finally {
      clearInterval(heartbeat);
      client.close();
      this.#client = null;
      this.#acks = null;
      await started;
      await runAfter(hooks, "afterShutdown", [this], lifecycle);
    }
  }

  /**
   * One long poll, abandoned when stopping begins: the loop then ends, and jobs a late answer brings go back to
   * the broker when the connection closes.
   */
  async #reserve(client, max, stopSignal) {
    const reserve = client.reserve(this.queues, { max, waitMs: this.waitMs, leaseMs: this.leaseMs });
    reserve.catch(() => {});
    const abandon = resolvers();
    const onStop = () => abandon.resolve([]);
    stopSignal.addEventListener("abort", onStop, { once: true });
    try {
      return await Promise.race([reserve, abandon.promise]);
    } finally {
      stopSignal.removeEventListener("abort", onStop);
    }
  }

  #obey(method) {
    if (method === "worker.quiet") {
      if (!this.#quiet) {
        this.#quiet = true;
        this.emit("quiet");
        this.#poke();
      }
    } else if (method === "worker.stop") {
      this.stop();
    } // other notifications: later brokers may add some; ignore them
  }

  #start(job) {
    const entry = { job, controller: new AbortController(), reason: null };
    this.#jobs.set(job.id, entry);
    entry.done = this.#perform(entry).finally(() => {
      this.#jobs.delete(job.id);
      this.#poke();
    });
  }

  #abort(entry, reason, error) {
    if (entry.reason) return;
    entry.reason = reason;
    entry.controller.abort(error);
  }

  async #perform(entry) {
    const { job, controller } = entry;
    const client = this.#client;
    const acks = this.#acks;
    // A job handed out after we began stopping goes straight back, unseen by hooks: it never started.
    if (this.#stopping) {
      this.#abort(entry, "stop", named("WorkerStopped", "the worker is stopping"));
      return this.#failed(entry, client, controller.signal.reason);
    }
    const outcome = await this.#traced({ ...job, signal: controller.signal }, entry);
    if (outcome.state !== "completed") return this.#failed(entry, client, outcome.error);
    const { result } = outcome;
    if (result instanceof StepResult) return this.#completeStep(entry, client, acks, result);
    try {
      await acks.ack(job.id, result);
      this.emit("completed", job, result);
    } catch (error) {
      this.emit("warning", error, job); // lease_lost (or lost in a batch of acks): put back, may run again elsewhere
    }
  }

  /**
   * The job run inside its span when there is a trace context provider: the span is the job's whole run, hooks
   * included, and fails when the job does. A provider that throws is reported to onFatalError and does not
   * change the job's outcome (the job runs untraced if it had not started).
   */
  async #traced(job, entry) {
    const runJob = this.#tracing?.runJob;
    if (!runJob) return this.#execute(job, entry);
    let outcome = null;
    const run = async () => {
      outcome = await this.#execute(job, entry);
      if (outcome.state !== "completed") throw outcome.error;
      return outcome.result;
    };
    try {
      await runJob.call(this.#tracing, job, jobTraceParent(job), run);
    } catch (error) {
      if (outcome && error === outcome.error) return outcome;
      await reportFatal(this.hooks, error, { source: "tracing", job, worker: this });
    }
    return outcome ?? this.#execute(job, entry);
  }

  /**
   * beforeJob, the handler inside the aroundJob hooks, afterJob and (for a failure) onJobFailure. Resolves the
   * outcome afterJob gets: {state: "completed", result} or {state, error} with state "failed", or "handedBack",
   * "cancelled" or "lost" when the worker aborted the job. Never rejects.
   */
  async #execute(job, entry) {
    const hooks = this.hooks;
    const context = { job, worker: this };
    let outcome;
    try {
      await runBefore(hooks, "beforeJob", [job], context);
      const result = await runAround(hooks, "aroundJob", job, () => this.#callHandler(job, entry), context);
      outcome = { state: "completed", result };
    } catch (error) {
      const state = { stop: "handedBack", cancel: "cancelled", lost: "lost" }[entry.reason] ?? "failed";
      outcome = { state, error };
    }
    await runAfter(hooks, "afterJob", [job, outcome], context);
    if (outcome.state === "failed") await runAfter(hooks, "onJobFailure", [job, outcome.error], context);
    return outcome;
  }

  /** The handler, abandoned (rejecting with the abort's reason) when the job is stopped, cancelled or lost. */
  async #callHandler(job, entry) {
    const handler = this.handlers[job.type];
    if (!handler) throw named("UnknownJobType", `no handler for job type ${job.type} on this worker`);
    const { signal } = entry.controller;
    signal.throwIfAborted();
    const aborted = new Promise((_, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
    return Promise.race([(async () => handler(job))(), aborted]);
  }

  /**
   * A step's outcome. With `set` or `jumpTo` it is acked alone (the broker refuses them in an `ack` with `ids`);
   * with only a result it goes with the others. An ack the broker refuses as invalid (-32602: the job is not a
   * step, or `jumpTo` names a branch or step the operation lacks) nacks the job with that error for good (the same
   * code would be refused again), so its operation fails at that step rather than waiting for the lease; once the
   * step is fixed, operations.retry resumes it.
   */
  async #completeStep(entry, client, acks, step) {
    const { job } = entry;
    try {
      if (step.steers) await client.ack(job.id, step.result, { set: step.set, jumpTo: step.jumpTo });
      else await acks.ack(job.id, step.result);
      this.emit("completed", job, step.result, step);
    } catch (error) {
      if (error instanceof RPCError && error.code === -32602) {
        error.permanent = true;
        return this.#failed(entry, client, error);
      }
      this.emit("warning", error, job); // lease_lost, not_found, a lost connection: as for any ack
    }
  }

  async #failed({ job, reason }, client, error) {
    try {
      if (reason === "lost") {
        this.emit("lost", job); // not ours any more: neither ack nor nack
      } else if (reason === "cancel") {
        await client.nack(job.id, { message: "cancelled by an operator while it ran", kind: "JobCancelled" }, { retry: false });
        this.emit("cancelled", job);
      } else if (reason === "stop") {
        await client.nack(job.id, { message: "the worker was told to stop and handed the job back", kind: "WorkerStopped" },
          { retry: true, retryInMs: 0 });
        this.emit("handedBack", job);
      } else {
        const permanent = error?.permanent === true;
        const outcome = await client.nack(job.id, error, { retry: !permanent });
        this.emit("failed", job, error, outcome);
      }
    } catch (nackError) {
      this.emit("warning", nackError, job); // the broker puts the job back when its lease ends
    }
  }

  /** Heartbeat: every third of the lease, extend every running job's lease in one call. */
  async #extendLeases() {
    const entries = [...this.#jobs.values()].filter((entry) => !entry.reason);
    if (this.#extending || !entries.length || !this.#client) return;
    this.#extending = true;
    try {
      const { leases, lost } = await this.#client.extend(entries.map((e) => e.job.id), { leaseMs: this.leaseMs });
      for (const lease of leases) {
        const entry = this.#jobs.get(lease.id);
        if (lease.cancel_requested && entry) this.#abort(entry, "cancel", named("JobCancelled", "an operator cancelled the job"));
      }
      for (const id of lost) {
        const entry = this.#jobs.get(id);
        if (entry) this.#abort(entry, "lost", named("LeaseLost", "the worker no longer holds the job's lease"));
      }
    } catch (error) {
      if (!(error instanceof RPCError) || !this.#stopping) this.emit("warning", error);
    } finally {
      this.#extending = false;
    }
  }

  #nextChange() {
    this.#wake ??= resolvers();
    return this.#wake.promise;
  }

  #poke() {
    const wake = this.#wake;
    this.#wake = null;
    wake?.resolve();
  }
}

function resolvers() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}
