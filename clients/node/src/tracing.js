// W3C Trace Context through a job's meta: `traceparent` (and `tracestate`) set at enqueue from the current
// span, and the job's span started from them in the worker. OpenTelemetry (@opentelemetry/api) is used when it
// is installed, imported only when first needed; without it, and without a provider of the caller's, nothing
// is set and nothing fails.

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * `{version, traceId, spanId, flags}` of a W3C traceparent, or undefined when it is not one (version ff, an
 * all-zero trace or span id, or a version 00 header with anything after the flags are invalid).
 */
export function parseTraceparent(traceparent) {
  if (typeof traceparent !== "string") return undefined;
  const match = TRACEPARENT.exec(traceparent.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === "ff" || (version === "00" && rest) || /^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { version, traceId, spanId, flags: parseInt(flags, 16) };
}

/** `00-<traceId>-<spanId>-<flags>`; `flags` a number (1: sampled) or two hex digits. */
export function formatTraceparent({ traceId, spanId, flags = 0 }) {
  const hex = typeof flags === "number" ? (flags & 0xff).toString(16).padStart(2, "0") : flags;
  const traceparent = `00-${traceId}-${spanId}-${hex}`;
  if (!parseTraceparent(traceparent)) throw new TypeError(`Not a valid W3C trace context: ${traceparent}`);
  return traceparent;
}

/**
 * The tracing of OpenTelemetry's API module `api` (what `import("@opentelemetry/api")` gives). `current()`
 * reads the active span's context; `runJob` starts a CONSUMER span `process <type>` around the job, a child of
 * the job's traceparent on attempt 1 and a new trace linked to it on later attempts (or when there is none),
 * records a failure's exception and status, and makes the span active while the job runs.
 */
export function openTelemetryTracing(api, { version = "0.1.0" } = {}) {
  const tracer = () => api.trace.getTracer("gantry-client", version);
  return {
    current() {
      const span = api.trace.getSpanContext(api.context.active());
      if (!span || !(api.isSpanContextValid?.(span) ?? true)) return undefined;
      const tracestate = span.traceState?.serialize?.() || undefined;
      return { traceparent: formatTraceparent({ traceId: span.traceId, spanId: span.spanId, flags: span.traceFlags ?? 0 }), tracestate };
    },
    runJob(job, parent, run) {
      const remote = remoteSpanContext(api, parent);
      const options = {
        kind: api.SpanKind?.CONSUMER ?? 4,
        attributes: {
          "messaging.system": "gantry",
          "messaging.operation.type": "process",
          "messaging.destination.name": job.queue,
          "messaging.message.id": job.id,
          "gantry.job.type": job.type,
          "gantry.job.attempt": job.attempt,
        },
      };
      let context = api.context.active();
      if (remote && parent.relation === "child") {
        // ROOT_CONTEXT, not the active one: the job's parent is its enqueuer, whatever the worker's loop runs in.
        context = api.trace.setSpanContext(api.ROOT_CONTEXT, remote);
      } else {
        options.root = true;
        if (remote) options.links = [{ context: remote, attributes: { "gantry.link": "previous attempts" } }];
      }
      return tracer().startActiveSpan(`process ${job.type}`, options, context, async (span) => {
        try {
          return await run();
        } catch (error) {
          span.recordException?.(error instanceof Error ? error : String(error));
          span.setStatus?.({ code: api.SpanStatusCode?.ERROR ?? 2, message: error?.message ?? String(error) });
          throw error;
        } finally {
          span.end();
        }
      });
    },
  };
}

function remoteSpanContext(api, { traceparent, tracestate } = {}) {
  const parsed = parseTraceparent(traceparent);
  if (!parsed) return undefined;
  return {
    traceId: parsed.traceId, spanId: parsed.spanId, traceFlags: parsed.flags & 0xff, isRemote: true,
    ...(tracestate && api.createTraceState ? { traceState: api.createTraceState(tracestate) } : {}),
  };
}

let loading = null;

/** OpenTelemetry's tracing when @opentelemetry/api can be imported, else null (asked once per process). */
export function loadOpenTelemetry() {
  // A name in a variable, so bundlers leave the import alone and the package stays optional.
  const name = "@opentelemetry/api";
  loading ??= import(name).then(
    (module) => {
      const api = module.trace ? module : module.default;
      return api?.trace && api.context ? openTelemetryTracing(api) : null;
    },
    () => null,
  );
  return loading;
}

/** The default provider: OpenTelemetry when installed, else nothing. */
const automatic = Object.freeze({
  async current() {
    return (await loadOpenTelemetry())?.current();
  },
  async runJob(job, parent, run) {
    const otel = await loadOpenTelemetry();
    return otel ? otel.runJob(job, parent, run) : run();
  },
});

/**
 * The `tracing` option of a client or worker as a provider: undefined → OpenTelemetry if installed; false or
 * null → none; else an object with `current()` and/or `runJob(job, parent, run)`.
 */
export function tracingProvider(option) {
  if (option === undefined) return automatic;
  if (option === false || option === null) return null;
  if (typeof option === "object" && (typeof option.current === "function" || typeof option.runJob === "function")) return option;
  throw new TypeError("tracing must be false, or an object with current() (→ {traceparent, tracestate} or nothing) " +
    "and/or runJob(job, parent, run).");
}

const isPlainObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * `options` with `meta.traceparent` (and `tracestate` when non-empty) from `context`, unless the caller set
 * traceparent: then both stay as the caller has them. Throws a TypeError for a context that is no W3C one.
 */
export function withTraceContext(options, context) {
  if (!context?.traceparent) return options;
  if (!parseTraceparent(context.traceparent)) {
    throw new TypeError(`The trace context provider gave a traceparent that is not W3C: ${JSON.stringify(context.traceparent)}`);
  }
  const { meta } = options;
  // A meta that is not an object is the broker's to refuse; a caller's traceparent is theirs to keep.
  if (meta != null && !isPlainObject(meta)) return options;
  if (meta?.traceparent !== undefined) return options;
  const added = { traceparent: context.traceparent };
  if (context.tracestate && meta?.tracestate === undefined) added.tracestate = context.tracestate;
  return { ...options, meta: { ...meta, ...added } };
}

/**
 * How a worker relates a job's span to the job's meta: `{traceparent, tracestate, attempt, relation}`, relation
 * "child" on attempt 1, "link" on later attempts (a retry is a new trace linked to the enqueue's), "root" when
 * the job carries no valid traceparent.
 */
export function jobTraceParent(job) {
  const meta = isPlainObject(job.meta) ? job.meta : {};
  const traceparent = parseTraceparent(meta.traceparent) ? meta.traceparent.trim() : undefined;
  const tracestate = traceparent && typeof meta.tracestate === "string" && meta.tracestate ? meta.tracestate : undefined;
  const relation = !traceparent ? "root" : (job.attempt ?? 1) > 1 ? "link" : "child";
  return { traceparent, tracestate, attempt: job.attempt, relation };
}
