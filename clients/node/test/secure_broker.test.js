// Tokens and TLS against real brokers: one with TLS and tokens (GANTRY_SECURE_URL), one that also wants a client
// certificate signed by the test CA (GANTRY_MTLS_URL). scripts/with_broker.py exports these with the test CA,
// client certificate and one token per role; without them the tests here are skipped (the rest of the suite
// needs only GANTRY_URL).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { GantryClient, Worker, RPCError, TLSError } from "../src/index.js";
import { makeCertificates } from "../testing/certs.js";
import { unique, withEnv } from "../testing/helpers.js";

const env = process.env;
const secureUrl = env.GANTRY_SECURE_URL;
const mtlsUrl = env.GANTRY_MTLS_URL;
const ca = env.GANTRY_TEST_CA;
const tokens = {
  admin: env.GANTRY_TEST_ADMIN_TOKEN,
  worker: env.GANTRY_TEST_WORKER_TOKEN,
  producer: env.GANTRY_TEST_PRODUCER_TOKEN,
  mailProducer: env.GANTRY_TEST_MAIL_PRODUCER_TOKEN,
};
const missing = (names) => {
  const absent = names.filter((name) => !env[name]);
  return absent.length ? `needs ${absent.join(", ")} (a secure broker, e.g. from scripts/with_broker.py)` : false;
};
const SECURE = ["GANTRY_SECURE_URL", "GANTRY_TEST_CA", "GANTRY_TEST_ADMIN_TOKEN", "GANTRY_TEST_WORKER_TOKEN",
  "GANTRY_TEST_PRODUCER_TOKEN", "GANTRY_TEST_MAIL_PRODUCER_TOKEN"];
const MTLS = ["GANTRY_MTLS_URL", "GANTRY_TEST_CA", "GANTRY_TEST_CLIENT_CERT", "GANTRY_TEST_CLIENT_KEY", "GANTRY_TEST_ADMIN_TOKEN"];

// The settings a developer's shell may hold would change what these tests mean: each client gets its own.
const CLEAN = { GANTRY_TOKEN: undefined, GANTRY_CA_FILE: undefined, GANTRY_CERT_FILE: undefined, GANTRY_KEY_FILE: undefined };

/** Runs `body(client)` with a client of the secure broker, closing it after. */
async function using(options, body) {
  const client = new GantryClient({ url: secureUrl, caFile: ca, ...options });
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

describe("a broker with TLS and tokens", { skip: missing(SECURE), concurrency: true }, () => {
  test("the admin token and the test CA: stats works", () => withEnv(CLEAN, () => using({ token: tokens.admin }, async (admin) => {
    const stats = await admin.stats();
    assert.ok(stats.broker, JSON.stringify(stats));
    assert.equal(admin.tls, true);
    assert.equal(admin.connections, 1);
  })));

  test("the token in the URL's userinfo works", () => withEnv(CLEAN, async () => {
    const { host, port } = new GantryClient({ url: secureUrl });
    const hostPart = host.includes(":") ? `[${host}]` : host;
    const client = new GantryClient({ url: `gantrys://${encodeURIComponent(tokens.admin)}@${hostPart}:${port}`, caFile: ca });
    try {
      assert.ok((await client.stats()).broker);
    } finally {
      client.close();
    }
  }));

  test("without caFile the certificate is not trusted: a TLSError naming caFile", () => withEnv(CLEAN, async () => {
    const client = new GantryClient({ url: secureUrl, token: tokens.admin });
    const started = Date.now();
    const error = await client.stats().catch((e) => e);
    assert.ok(error instanceof TLSError, error);
    assert.match(error.message, /not trusted.*caFile \(GANTRY_CA_FILE\)/);
    assert.ok(Date.now() - started < 5000, "failed at once, not after the 30 s of patience");
  }));

  test("plain TCP to the TLS broker: a TLSError saying to use gantrys://", () => withEnv(CLEAN, async () => {
    const { host, port } = new GantryClient({ url: secureUrl });
    const client = new GantryClient({ url: `gantry://${host}:${port}`, token: tokens.admin, patienceMs: 3000 });
    const error = await client.stats().catch((e) => e);
    client.close();
    assert.ok(error instanceof TLSError, `${error?.name}: ${error?.message}`);
    assert.match(error.message, /speaks TLS: use gantrys:\/\//);
  }));

  test("a wrong token: -32001 for the call, at once, and no reconnecting loop", () => withEnv(CLEAN, async () => {
    await using({ token: "not-a-real-token" }, async (client) => {
      const started = Date.now();
      const calls = await Promise.allSettled([client.stats(), client.enqueue("t", [], { queue: unique() })]);
      for (const { status, reason } of calls) {
        assert.equal(status, "rejected");
        assert.ok(reason instanceof RPCError, reason);
        assert.equal(reason.code, -32001);
        assert.equal(reason.name, "unauthorized");
        assert.equal(reason.retryable, false);
      }
      assert.ok(Date.now() - started < 5000, "not retried for the 30 s of patience");
      assert.equal(client.connections, 0, "no connection got past hello");
    });
    await using({}, async (client) => { // no token at all
      await assert.rejects(client.stats(), (e) => e instanceof RPCError && e.code === -32001 && /no token was sent/.test(e.message));
    });
    const worker = new Worker({ url: secureUrl, caFile: ca, token: "not-a-real-token", queues: [unique()] });
    await assert.rejects(worker.run(), { code: -32001 }, "a worker with a bad token stops instead of retrying");
  }));

  test("a producer enqueues; reserve with its token is -32009 forbidden", () => withEnv(CLEAN, () => using({ token: tokens.producer }, async (producer) => {
    const queue = unique();
    const id = await producer.enqueue("email.send", { to: "ana@example.com" }, { queue });
    assert.equal((await producer.job(id)).state, "available");
    assert.equal((await producer.enqueueBatch([{ type: "t", queue }, { type: "t", queue }])).length, 2);
    const error = await producer.reserve(queue).catch((e) => e);
    assert.ok(error instanceof RPCError, error);
    assert.equal(error.code, -32009);
    assert.equal(error.name, "forbidden");
    assert.equal(error.retryable, false);
    assert.equal(error.data?.role, "producer");
    assert.equal(error.data?.method, "reserve");
    await assert.rejects(producer.cancelJob(id), { code: -32009 }, "admin methods are not a producer's either");
    assert.ok((await producer.stats()).broker, "a refusal does not cost the connection");
    assert.equal(producer.connections, 1);
  })));

  test("a Worker with the worker token runs a job the producer enqueued", () => withEnv(CLEAN, () => using({ token: tokens.producer }, async (producer) => {
    const queue = unique();
    const id = await producer.enqueue("math.double", { n: 21 }, { queue });
    const worker = new Worker({
      url: secureUrl, caFile: ca, token: tokens.worker, queues: [queue], waitMs: 500, id: unique("node-secure-worker"),
      handlers: { "math.double": async (job) => ({ doubled: job.args.n * 2 }) },
    });
    worker.on("completed", (job) => { if (job.id === id) worker.shutdown(); });
    const timer = setTimeout(() => worker.stop(), 15_000);
    try {
      await worker.run();
    } finally {
      clearTimeout(timer);
    }
    const job = await producer.job(id);
    assert.equal(job.state, "completed");
    assert.deepEqual(job.result, { doubled: 42 });
    await using({ token: tokens.worker }, async (workerClient) => {
      await assert.rejects(workerClient.enqueue("t", [], { queue }), { code: -32009, name: "forbidden" }, "a worker token does not enqueue");
    });
  })));

  test("a producer limited to `mail` enqueues there, and gets -32009 for queue `other`", () => withEnv(CLEAN, () => using({ token: tokens.mailProducer }, async (mail) => {
    const id = await mail.enqueue("email.send", { to: "ana@example.com" }, { queue: "mail" });
    assert.equal(typeof id, "string");
    const error = await mail.enqueue("email.send", {}, { queue: "other" }).catch((e) => e);
    assert.ok(error instanceof RPCError, error);
    assert.equal(error.code, -32009);
    assert.equal(error.name, "forbidden");
    assert.equal(error.data?.queue, "other");
    await assert.rejects(mail.enqueueBatch([{ type: "t", queue: "mail" }, { type: "t", queue: "other" }]), { code: -32009 },
      "a batch reaching another queue is refused");
  })));
});

describe("a broker with mutual TLS", { skip: missing(MTLS), concurrency: true }, () => {
  test("certFile and keyFile: stats works", () => withEnv(CLEAN, async () => {
    const client = new GantryClient({ url: mtlsUrl, caFile: ca, certFile: env.GANTRY_TEST_CLIENT_CERT,
      keyFile: env.GANTRY_TEST_CLIENT_KEY, token: tokens.admin });
    try {
      assert.ok((await client.stats()).broker);
    } finally {
      client.close();
    }
  }));

  test("the client certificate from GANTRY_CERT_FILE and GANTRY_KEY_FILE", () => withEnv(
    { ...CLEAN, GANTRY_CERT_FILE: env.GANTRY_TEST_CLIENT_CERT, GANTRY_KEY_FILE: env.GANTRY_TEST_CLIENT_KEY, GANTRY_CA_FILE: ca }, async () => {
      const client = new GantryClient({ url: mtlsUrl, token: tokens.admin });
      try {
        assert.ok((await client.stats()).broker);
      } finally {
        client.close();
      }
    }));

  // Certificates of a CA of this test's own, which the broker does not trust.
  const stranger = missing(MTLS) ? null : makeCertificates();
  test("a client certificate from another CA: a TLSError naming certFile", { skip: stranger ? false : "openssl cannot be run here" },
    () => withEnv(CLEAN, async () => {
      const client = new GantryClient({ url: mtlsUrl, caFile: ca, certFile: stranger.clientCert, keyFile: stranger.clientKey,
        token: tokens.admin, patienceMs: 3000 });
      const error = await client.stats().catch((e) => e);
      client.close();
      assert.ok(error instanceof TLSError, `${error?.name}: ${error?.message}`);
      assert.ok(error.message.includes(`refused the client certificate in certFile ${stranger.clientCert}`), error.message);
    }));

  test("without a client certificate: a TLSError saying to pass certFile and keyFile", () => withEnv(CLEAN, async () => {
    // Little patience, so that a failure that is not worded (a bare ConnectionLost, retried) shows quickly.
    const client = new GantryClient({ url: mtlsUrl, caFile: ca, token: tokens.admin, patienceMs: 3000 });
    const started = Date.now();
    const error = await client.stats().catch((e) => e);
    client.close();
    assert.ok(error instanceof TLSError, `${error?.name}: ${error?.message}`);
    assert.match(error.message, /certFile and keyFile/);
    assert.ok(Date.now() - started < 2500, "not retried");
  }));
});
