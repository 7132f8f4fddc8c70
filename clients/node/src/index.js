// gantry-client: a Node.js client and worker for the Gantry job broker.
export { GantryClient, wireParams } from "./client.js";
export { Worker, StepResult } from "./worker.js";
export { Hooks, HOOK_NAMES } from "./hooks.js";
export { openTelemetryTracing, parseTraceparent, formatTraceparent } from "./tracing.js";
export { Connection, parseAddress } from "./connection.js";
export { RPCError, ConnectionLost, TLSError, RequestTooLarge, PermanentError, ERROR_CODES, errorName } from "./errors.js";
