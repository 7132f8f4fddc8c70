// AckBatcher: the Worker's acks. Jobs that finish together are acked together, in one `ack` with `ids`.
import { RPCError, RequestTooLarge } from "./errors.js";

/** The most ids one `ack` takes. */
const MAX_ACK_IDS = 10_000;

/**
 * Acks jobs for one client. An ack with none in flight goes out at once, alone (so an idle worker adds no
 * latency); the jobs that finish while it is on the way wait and go together in the next `ack` with `ids`, one
 * request and one commit on the broker. Each caller hears only of its own job: `ack` resolves once it is acked,
 * or rejects with the error a single ack would have met: an RPCError -32003 lease_lost (or -32002 not_found) for
 * a job the broker answered in `lost`, and the request's own failure (e.g. ConnectionLost) for every job in it.
 */
export class AckBatcher {
  #client;
  #waiting = []; // {id, result, resolve, reject}
  #sending = false;
  #oneByOne = false; // the broker refused `ids` (it is older than them): every ack goes alone from then on

  constructor(client) {
    this.#client = client;
  }

  ack(id, result) {
    if (this.#oneByOne) return this.#client.ack(id, result);
    const { promise, resolve, reject } = resolvers();
    this.#waiting.push({ id, result, resolve, reject });
    if (!this.#sending) this.#drain();
    return promise;
  }

  async #drain() {
    this.#sending = true;
    try {
      while (this.#waiting.length) {
        const batch = this.#waiting.splice(0, MAX_ACK_IDS);
        await this.#send(batch).catch((error) => { for (const ack of batch) ack.reject(error); });
      }
    } finally {
      this.#sending = false;
    }
  }

  async #send(batch) {
    if (batch.length > 1 && !this.#oneByOne) {
      try {
        const withResults = batch.filter((ack) => ack.result !== undefined);
        const results = withResults.length ? Object.fromEntries(withResults.map((ack) => [ack.id, ack.result])) : undefined;
        const answer = await this.#client.ackMany(batch.map((ack) => ack.id), { results });
        const lost = new Map((answer.lost ?? []).map((job) => [job.id, job]));
        for (const ack of batch) {
          if (lost.has(ack.id)) ack.reject(lostError(lost.get(ack.id)));
          else ack.resolve();
        }
        return;
      } catch (error) {
        const idsRefused = error instanceof RPCError && error.code === -32602 && error.field === "ids";
        if (idsRefused) this.#oneByOne = true;
        // Results too big for one line together may still fit one by one, as they did before batching.
        else if (!(error instanceof RequestTooLarge)) throw error;
      }
    }
    await Promise.all(batch.map((ack) => this.#client.ack(ack.id, ack.result).then(() => ack.resolve(), ack.reject)));
  }
}

/** The error `ack` with `id` would have answered for a job that `ack` with `ids` answered in `lost`. */
function lostError({ id, state }) {
  if (state === undefined) {
    return new RPCError({ code: -32002, message: `No job has id ${id}.`, data: { id } }, "ack");
  }
  return new RPCError({
    code: -32003, data: { id, state },
    message: `This connection does not hold the lease on job ${id} (it is now ${state}). Do not ack or nack it again.`,
  }, "ack");
}

function resolvers() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}
