// Hooks: functions an application adds to see (and wrap) every enqueue, every job and a worker's life, e.g. to
// report to an error tracker. The names are proto-json/hooks.json's, in lowerCamelCase.

/** Every hook, in the order they fire (proto-json/hooks.json; test/hooks.test.js holds this list to it). */
export const HOOK_NAMES = Object.freeze([
  "beforeEnqueue", "aroundEnqueue", "afterEnqueue",
  "beforeJob", "aroundJob", "afterJob", "onJobFailure",
  "onFatalError",
  "beforeStartup", "afterStartup", "beforeShutdown", "afterShutdown",
]);

const KNOWN = new Set(HOOK_NAMES);

/**
 * The hooks of a client or worker: for each name in HOOK_NAMES a method adding a function (chainable), e.g.
 * `client.hooks.beforeEnqueue((job) => { job.options.tags = ["web"]; })`. Hooks of one name run in the order
 * they were added; for around hooks the first added is the outermost. One Hooks may be shared: pass it as the
 * `hooks` option of a client and a worker. A GantryClient fires the enqueue hooks, a Worker the job and
 * lifecycle hooks; both report hook errors (and a worker its own fatal errors) to `onFatalError`.
 *
 *     beforeEnqueue(job)                  job: {type, args, options}; may change them
 *     aroundEnqueue(job, next)            next() enqueues (and the inner hooks); resolves the id
 *     afterEnqueue(job, id)
 *     beforeJob(job)                      the reserved job, as its handler gets it (with `signal`)
 *     aroundJob(job, next)                next() runs the handler (and the inner hooks); resolves its result
 *     afterJob(job, outcome)              {state: "completed", result} | {state: "failed" | "handedBack" |
 *                                          "cancelled" | "lost", error}
 *     onJobFailure(job, error)            the job failed (not stopped, cancelled or lost); before the nack
 *     onFatalError(error, context)        context: {source: "hook" (with `hook`) | "tracing" | "worker", job?, worker?, client?}
 *     beforeStartup(worker) … afterShutdown(worker)
 */
export class Hooks {
  #lists = new Map(HOOK_NAMES.map((name) => [name, []]));
  #logger = console;

  /** @param {Object<string, function|function[]>|Hooks} [hooks] name → a function or a list of them */
  constructor(hooks = {}) {
    if (hooks instanceof Hooks) {
      for (const name of HOOK_NAMES) for (const fn of hooks.get(name)) this.add(name, fn);
      this.logger = hooks.logger;
      return;
    }
    if (hooks === null || typeof hooks !== "object" || Array.isArray(hooks)) {
      throw new TypeError(`hooks must be an object of hook name → function (or a Hooks); names: ${HOOK_NAMES.join(", ")}.`);
    }
    for (const [name, fns] of Object.entries(hooks)) for (const fn of [].concat(fns)) this.add(name, fn);
  }

  /** A Hooks as given (so one can be shared), or a new one made from an object of name → functions. */
  static from(hooks) {
    return hooks instanceof Hooks ? hooks : new Hooks(hooks ?? {});
  }

  /** Where an error inside onFatalError (or any hook error while none is added) is written: `logger.error(…)`. */
  get logger() { return this.#logger; }
  set logger(logger) {
    if (typeof logger?.error !== "function") throw new TypeError("A hooks logger needs an error(...) method, as console has.");
    this.#logger = logger;
  }

  /** Adds `fn` to the hooks called `name` (one of HOOK_NAMES). Returns this Hooks. */
  add(name, fn) {
    // A misspelt name would otherwise never fire, silently.
    if (!KNOWN.has(name)) throw new TypeError(`There is no hook "${name}"; hooks: ${HOOK_NAMES.join(", ")}.`);
    if (typeof fn !== "function") throw new TypeError(`A ${name} hook must be a function.`);
    this.#lists.get(name).push(fn);
    return this;
  }

  /** The functions added as `name`, in the order they were added. */
  get(name) {
    if (!KNOWN.has(name)) throw new TypeError(`There is no hook "${name}"; hooks: ${HOOK_NAMES.join(", ")}.`);
    return [...this.#lists.get(name)];
  }

  /** Whether any function was added as `name`. */
  has(name) {
    return this.#lists.get(name)?.length > 0;
  }
}

for (const name of HOOK_NAMES) {
  Object.defineProperty(Hooks.prototype, name, {
    value: { [name](fn) { return this.add(name, fn); } }[name],
    writable: true, configurable: true, enumerable: false,
  });
}

/**
 * Runs the onFatalError hooks with `error` and `context`, one after another. An error inside one of them is
 * logged and the next still runs: there is nowhere further to report it. With none added, `error` is logged,
 * so that a failing hook is never silent.
 */
export async function reportFatal(hooks, error, context) {
  const handlers = hooks.get("onFatalError");
  if (!handlers.length) {
    hooks.logger.error(`gantry: ${describe(context)} failed:`, error);
    return;
  }
  for (const fn of handlers) {
    try {
      await fn(error, context);
    } catch (inner) {
      hooks.logger.error(`gantry: an onFatalError hook failed while reporting ${describe(context)}'s error:`, inner,
        "\nthe error it was reporting:", error);
    }
  }
}

function describe({ source, hook } = {}) {
  if (source === "hook") return `the ${hook} hook`;
  if (source === "tracing") return "the trace context provider";
  return "the worker";
}

/**
 * Runs the `name` hooks with `args` in order. The first that throws is reported to onFatalError and its error
 * rethrown: a before hook failing fails what it comes before.
 */
export async function runBefore(hooks, name, args, context) {
  for (const fn of hooks.get(name)) {
    try {
      await fn(...args);
    } catch (error) {
      await reportFatal(hooks, error, { ...context, source: "hook", hook: name });
      throw error;
    }
  }
}

/** Runs every `name` hook with `args`; errors are reported to onFatalError and change nothing else. */
export async function runAfter(hooks, name, args, context) {
  for (const fn of hooks.get(name)) {
    try {
      await fn(...args);
    } catch (error) {
      await reportFatal(hooks, error, { ...context, source: "hook", hook: name });
    }
  }
}

/**
 * Runs `step` inside the `name` hooks, the first added outermost; each gets (subject, next). Resolves what the
 * outermost resolves (a hook resolving undefined passes on next's value, as `await next()` without `return` is
 * the usual slip, and one that did not wait for next waits for it here). An error from `step` that comes out through the hooks is not theirs and is not reported; an
 * error a hook raises itself, or a hook returning without calling next, is reported to onFatalError and
 * rejects.
 */
export function runAround(hooks, name, subject, step, context) {
  const fns = hooks.get(name);
  const layer = async (index) => {
    if (index === fns.length) return step();
    let called = false;
    let settled = false;
    let innerFailed = false;
    let innerError;
    let innerValue;
    let inner;
    const next = () => {
      if (called) return Promise.reject(new Error(`A ${name} hook called next() more than once; it must call it once.`));
      called = true;
      inner = (async () => {
        try {
          innerValue = await layer(index + 1);
          return innerValue;
        } catch (error) {
          innerFailed = true;
          innerError = error;
          throw error;
        } finally {
          settled = true;
        }
      })();
      inner.catch(() => {}); // a hook that drops next()'s promise must not crash the process; it is awaited below
      return inner;
    };
    let value;
    try {
      value = await fns[index](subject, next);
    } catch (error) {
      if (innerFailed && error === innerError) throw error;
      await reportFatal(hooks, error, { ...context, source: "hook", hook: name });
      throw error;
    }
    if (!called) {
      const error = new Error(`A ${name} hook (number ${index + 1}) returned without calling next(); an around hook must call it once.`);
      error.name = "HookError";
      await reportFatal(hooks, error, { ...context, source: "hook", hook: name });
      throw error;
    }
    // A hook that called next() without awaiting it still waits for it: the step is not done before then, and
    // its failure (which the hook never saw) is the step's.
    if (!settled) await inner;
    return value === undefined ? innerValue : value;
  };
  return layer(0);
}
