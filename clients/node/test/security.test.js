// Tokens and TLS without a broker: addresses, where the token comes from and that it is never shown, how a
// refused hello and -32009 surface, and TLS against fake brokers (certificates made with openssl; those tests
// are skipped where openssl cannot be run). secure_broker.test.js does the same against real brokers.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import util from "node:util";
import { GantryClient, Worker, RPCError, ConnectionLost, TLSError, parseAddress } from "../src/index.js";
import { fakeBroker, ok, refuse } from "../testing/fake_broker.js";
import { makeCertificates } from "../testing/certs.js";
import { withEnv } from "../testing/helpers.js";

const SECRET = "s3cr3t-t0ken";

/** The token the fake broker saw in the last hello of `client` (after one call). */
async function helloToken(broker, options) {
  const client = new GantryClient({ url: broker.url, patienceMs: 0, ...options });
  try {
    await client.call("stats");
  } finally {
    client.close();
  }
  return broker.seen.filter((r) => r.method === "hello").at(-1).params.token;
}

describe("addresses", () => {
  test("gantry:// and gantrys://, with a token as userinfo, percent-decoded", () => {
    assert.deepEqual(parseAddress("gantrys://127.0.0.1:7443"), { host: "127.0.0.1", port: 7443, tls: true });
    assert.deepEqual(parseAddress("GANTRYS://broker.internal"), { host: "broker.internal", port: 7440, tls: true });
    assert.deepEqual(parseAddress("gantry://tok@127.0.0.1:7440"), { host: "127.0.0.1", port: 7440, token: "tok" });
    assert.deepEqual(parseAddress("gantrys://a%40b%3Ac%25d@[::1]:9"), { host: "::1", port: 9, tls: true, token: "a@b:c%d" });
    assert.deepEqual(parseAddress("gantrys://raw@at@host:1"), { host: "host", port: 1, tls: true, token: "raw@at" }, "the last @ ends the token");
    assert.deepEqual(parseAddress("gantry://@host:1"), { host: "host", port: 1 }, "an empty token is none");
    assert.deepEqual(parseAddress("host:1/"), { host: "host", port: 1 });
  });

  test("a bad address is refused without showing the token", () => {
    for (const url of [`http://${SECRET}@host:1`, `gantrys://${SECRET}%zz@host:1`, `gantrys://${SECRET}@host:99999`, `gantry://${SECRET}@`]) {
      assert.throws(() => parseAddress(url), (error) => error instanceof TypeError && !error.message.includes(SECRET) &&
        error.message.includes("***@"), url);
      assert.throws(() => new GantryClient({ url }), (error) => !error.message.includes(SECRET), url);
    }
  });

  test("tls: TLS from gantrys:// or tls: true; tls: false does not quietly undo gantrys://", async () => {
    await withEnv({ GANTRY_CERT_FILE: undefined, GANTRY_KEY_FILE: undefined }, () => {
      assert.equal(new GantryClient({ url: "127.0.0.1:1" }).tls, false);
      assert.equal(new GantryClient({ url: "gantry://127.0.0.1:1" }).tls, false);
      assert.equal(new GantryClient({ url: "gantrys://127.0.0.1:1" }).tls, true);
      assert.equal(new GantryClient({ url: "127.0.0.1:1", tls: true }).tls, true);
      assert.throws(() => new GantryClient({ url: "gantrys://127.0.0.1:1", tls: false }), /tls: false contradicts/);
    });
  });

  test("a client certificate without its key (or the reverse) is refused at once", async () => {
    await withEnv({ GANTRY_CERT_FILE: undefined, GANTRY_KEY_FILE: undefined }, () => {
      assert.throws(() => new GantryClient({ url: "gantrys://h:1", certFile: "c.pem" }), /keyFile \(GANTRY_KEY_FILE\)/);
      assert.throws(() => new GantryClient({ url: "gantrys://h:1", keyFile: "k.pem" }), /certFile \(GANTRY_CERT_FILE\)/);
    });
    await withEnv({ GANTRY_CERT_FILE: "c.pem", GANTRY_KEY_FILE: undefined }, () => {
      assert.throws(() => new GantryClient({ url: "gantrys://h:1" }), /keyFile/);
    });
    await withEnv({ GANTRY_CERT_FILE: undefined, GANTRY_KEY_FILE: "env-key.pem" }, () => {
      // A key from the environment goes only with the certificate from the environment.
      assert.throws(() => new GantryClient({ url: "gantrys://h:1", certFile: "c.pem" }), /keyFile/);
      assert.doesNotThrow(() => new GantryClient({ url: "gantrys://h:1" }), "a lone GANTRY_KEY_FILE is not used");
    });
  });

  test("certificate files for a plain connection are refused; the env variables are only read for TLS", async () => {
    for (const option of ["caFile", "certFile", "keyFile"]) {
      assert.throws(() => new GantryClient({ url: "h:1", [option]: "x.pem" }),
        new RegExp(`${option} given for a plain connection: use a gantrys:// URL or tls: true`));
    }
    await withEnv({ GANTRY_CA_FILE: "ca.pem", GANTRY_CERT_FILE: "c.pem", GANTRY_KEY_FILE: undefined }, () => {
      assert.doesNotThrow(() => new GantryClient({ url: "h:1" }));
    });
  });
});

describe("tokens", () => {
  let broker;
  before(async () => { broker = await fakeBroker({ answer: (request) => [ok(request, request.method === "reserve" ? { jobs: [] } : {})] }); });
  after(() => broker.close());

  test("the token is hello's `token`: option, else the URL's, else GANTRY_TOKEN", async () => {
    const port = broker.port;
    await withEnv({ GANTRY_TOKEN: "from-env" }, async () => {
      assert.equal(await helloToken(broker, { url: `gantry://from-url@127.0.0.1:${port}`, token: "from-option" }), "from-option");
      assert.equal(await helloToken(broker, { url: `gantry://from-url@127.0.0.1:${port}` }), "from-url");
      assert.equal(await helloToken(broker, { url: `gantry://from%2Furl@127.0.0.1:${port}` }), "from/url");
      assert.equal(await helloToken(broker, { url: `127.0.0.1:${port}` }), "from-env");
      assert.equal(await helloToken(broker, { url: `127.0.0.1:${port}`, token: null }), "from-env");
    });
    await withEnv({ GANTRY_TOKEN: undefined }, async () => {
      assert.equal(await helloToken(broker, { url: `127.0.0.1:${port}` }), undefined, "no token: none sent");
      assert.ok(!("token" in broker.seen.at(-2).params));
    });
    await withEnv({ GANTRY_TOKEN: "" }, async () => {
      assert.equal(await helloToken(broker, { url: `127.0.0.1:${port}` }), undefined, "an empty GANTRY_TOKEN is none");
    });
    assert.throws(() => new GantryClient({ url: "h:1", token: 42 }), /non-empty string/);
    assert.throws(() => new GantryClient({ url: "h:1", token: "" }), /non-empty string/, "an empty token is a mistake, not a fallback");
  });

  test("a Worker sends its token in hello too", async () => {
    const worker = new Worker({ url: `gantry://${SECRET}@${broker.url}`, queues: ["q"], waitMs: 50 });
    const running = worker.run();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await worker.shutdown();
    await running;
    const hello = broker.seen.filter((r) => r.method === "hello").at(-1).params;
    assert.equal(hello.token, SECRET);
    assert.deepEqual(hello.worker.queues, ["q"]);
  });

  test("neither util.inspect, console.log nor JSON.stringify shows the token", async () => {
    await withEnv({ GANTRY_TOKEN: undefined }, async () => {
      const fromOption = new GantryClient({ url: broker.url, token: SECRET });
      const fromUrl = new GantryClient({ url: `gantry://${SECRET}@${broker.url}` });
      const worker = new Worker({ url: `gantrys://${SECRET}@127.0.0.1:1`, token: SECRET, queues: ["q"] });
      try {
        await fromOption.call("stats");
        await fromUrl.call("stats");
        for (const value of [fromOption, fromUrl, worker]) {
          const shown = [util.inspect(value, { showHidden: true, depth: 10 }), util.format("%o", value), JSON.stringify(value)];
          for (const text of shown) assert.ok(!text.includes(SECRET), text);
        }
        assert.equal(worker.url, "gantrys://***@127.0.0.1:1");
      } finally {
        fromOption.close();
        fromUrl.close();
      }
    });
  });
});

describe("refusals", () => {
  test("a refused hello rejects the calls waiting on it with -32001, once, without reconnecting", async () => {
    const broker = await fakeBroker({
      hello: (request) => [refuse(request, { code: -32001, message: "The token is not known." })],
      answer: (request) => [refuse(request, { code: -32001, message: "send hello first" })],
    });
    const client = new GantryClient({ url: broker.url, token: "wrong" }); // default patience: 30 s
    try {
      const started = Date.now();
      const calls = await Promise.allSettled([client.stats(), client.enqueue("t"), client.call("jobs.get", { id: "1" })]);
      for (const { status, reason } of calls) {
        assert.equal(status, "rejected");
        assert.ok(reason instanceof RPCError, reason);
        assert.equal(reason.code, -32001);
        assert.equal(reason.name, "unauthorized");
        assert.equal(reason.retryable, false);
        assert.equal(reason.method, "hello");
      }
      assert.ok(Date.now() - started < 2000, "no backoff loop");
      assert.equal(broker.accepted(), 1, "one connection for the three calls");
      assert.deepEqual(broker.seen.map((r) => r.method), ["hello"], "nothing sent after the refused hello");
      assert.equal(client.connections, 0);
      // A later call tries again, once (the token may have been created meanwhile).
      await assert.rejects(client.stats(), { code: -32001 });
      assert.equal(broker.accepted(), 2);
    } finally {
      client.close();
      broker.close();
    }
  });

  test("a refused hello without a token says how to give one", async () => {
    const broker = await fakeBroker({ hello: (request) => [refuse(request, { code: -32001, message: "This broker requires a token." })] });
    await withEnv({ GANTRY_TOKEN: undefined }, async () => {
      const client = new GantryClient({ url: broker.url });
      try {
        await assert.rejects(client.stats(), (error) => error.code === -32001 && /no token was sent: pass token.*GANTRY_TOKEN/.test(error.message));
      } finally {
        client.close();
        broker.close();
      }
    });
  });

  test("-32009 forbidden is named, carries its data and is not retried; a Worker stops on it", async () => {
    const forbidden = (request) => refuse(request, { code: -32009, message: "The token has the role producer, which may not call reserve.",
      data: { token: "billing", role: "producer", method: request.method } });
    const broker = await fakeBroker({ answer: (request) => [request.method === "stats" ? ok(request, {}) : forbidden(request)] });
    const client = new GantryClient({ url: broker.url, token: "producer-token" });
    try {
      const error = await client.reserve("q").catch((e) => e);
      assert.ok(error instanceof RPCError);
      assert.equal(error.code, -32009);
      assert.equal(error.name, "forbidden");
      assert.equal(error.retryable, false);
      assert.deepEqual(error.data, { token: "billing", role: "producer", method: "reserve" });
      assert.equal(broker.seen.filter((r) => r.method === "reserve").length, 1);
      assert.ok(await client.stats(), "the connection stays");

      const worker = new Worker({ url: broker.url, token: "producer-token", queues: ["q"] });
      await assert.rejects(worker.run(), { code: -32009, name: "forbidden" });
    } finally {
      client.close();
      broker.close();
    }
  });
});

const certs = makeCertificates();
const noOpenssl = certs ? false : "openssl cannot be run here to make test certificates";

describe("TLS against a fake broker", { skip: noOpenssl }, () => {
  let broker; // TLS, certificate for IP 127.0.0.1 signed by certs.ca
  let mutual; // the same, and wants a client certificate signed by certs.ca
  let plain;
  before(async () => {
    const server = { key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert) };
    const answer = (request) => [ok(request, { broker: "fake" })];
    broker = await fakeBroker({ tls: server, answer });
    mutual = await fakeBroker({ tls: { ...server, ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true }, answer });
    plain = await fakeBroker({ answer });
  });
  after(() => { broker?.close(); mutual?.close(); plain?.close(); });

  test("gantrys:// with caFile: the certificate is checked, the token sent, no SNI for an IP", async () => {
    const client = new GantryClient({ url: `gantrys://${SECRET}@${broker.url}`, caFile: certs.ca });
    try {
      assert.deepEqual(await client.stats(), { broker: "fake" });
      assert.equal(broker.seen.at(-2).params.token, SECRET);
      assert.deepEqual(broker.servernames, [false], "no servername for 127.0.0.1");
    } finally {
      client.close();
    }
  });

  test("tls: true on host:port, and caFile from GANTRY_CA_FILE", async () => {
    await withEnv({ GANTRY_CA_FILE: certs.ca }, async () => {
      const client = new GantryClient({ url: broker.url, tls: true });
      try {
        assert.deepEqual(await client.stats(), { broker: "fake" });
      } finally {
        client.close();
      }
    });
  });

  test("an untrusted certificate is a TLSError naming caFile, at once, without reconnecting", async () => {
    await withEnv({ GANTRY_CA_FILE: undefined }, async () => {
      const before = broker.accepted();
      const started = Date.now();
      const client = new GantryClient({ url: `gantrys://${broker.url}` }); // default patience: 30 s
      const error = await client.stats().catch((e) => e);
      assert.ok(error instanceof TLSError, error);
      assert.ok(error instanceof ConnectionLost, "a TLSError is a ConnectionLost");
      assert.match(error.message, /the broker's certificate is not trusted.*pass caFile \(GANTRY_CA_FILE\)/);
      assert.ok(Date.now() - started < 2000);
      assert.equal(broker.accepted() - before, 1);

      const other = new GantryClient({ url: `gantrys://${broker.url}`, caFile: certs.otherCa });
      await assert.rejects(other.stats(), (e) => e instanceof TLSError && e.message.includes(certs.otherCa));
    });
  });

  test("a certificate for another host is a TLSError; a name is sent as SNI", async () => {
    const client = new GantryClient({ url: `gantrys://localhost:${broker.port}`, caFile: certs.ca });
    await assert.rejects(client.stats(), (e) => e instanceof TLSError && /not for localhost/.test(e.message));
    assert.ok(broker.servernames.includes("localhost"));
  });

  test("PEM files that cannot be used are TLSErrors naming the option", async () => {
    const url = `gantrys://${broker.url}`;
    await assert.rejects(new GantryClient({ url, caFile: "/nonexistent/ca.pem" }).stats(),
      (e) => e instanceof TLSError && /cannot read caFile \/nonexistent\/ca.pem \(ENOENT\)/.test(e.message));
    await assert.rejects(new GantryClient({ url, caFile: certs.serverKey }).stats(),
      (e) => e instanceof TLSError && /caFile .* holds no PEM certificate/.test(e.message));
    await assert.rejects(new GantryClient({ url, caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.strangerKey }).stats(),
      (e) => e instanceof TLSError && /keyFile must be the unencrypted private key of certFile's certificate/.test(e.message));
  });

  test("mutual TLS: certFile and keyFile work; without them a TLSError says to pass them", async () => {
    const client = new GantryClient({ url: `gantrys://${mutual.url}`, caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey });
    try {
      assert.deepEqual(await client.stats(), { broker: "fake" });
    } finally {
      client.close();
    }
    await withEnv({ GANTRY_CERT_FILE: undefined, GANTRY_KEY_FILE: undefined }, async () => {
      const before = mutual.accepted();
      const bare = new GantryClient({ url: `gantrys://${mutual.url}`, caFile: certs.ca });
      await assert.rejects(bare.stats(), (e) => e instanceof TLSError &&
        /wants a client certificate.*pass certFile and keyFile \(GANTRY_CERT_FILE, GANTRY_KEY_FILE\)/.test(e.message));
      assert.equal(mutual.accepted() - before, 1, "not retried");
    });
    await withEnv({ GANTRY_CERT_FILE: certs.clientCert, GANTRY_KEY_FILE: certs.clientKey }, async () => {
      const fromEnv = new GantryClient({ url: `gantrys://${mutual.url}`, caFile: certs.ca });
      try {
        assert.deepEqual(await fromEnv.stats(), { broker: "fake" });
      } finally {
        fromEnv.close();
      }
    });
  });

  test("a plain connection dropped before hello is answered hints at TLS (and TLS at a client certificate)", async () => {
    const hangUp = await fakeBroker({ hello: (request, number, socket) => { socket.destroy(); } });
    try {
      await assert.rejects(new GantryClient({ url: hangUp.url, patienceMs: 300 }).stats(),
        (e) => e instanceof ConnectionLost && e.message.endsWith(`before hello was answered; if the broker serves TLS, use gantrys://${hangUp.url}`));
    } finally {
      hangUp.close();
    }
    const tlsHangUp = await fakeBroker({ tls: { key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert) },
      hello: (request, number, socket) => { socket.destroy(); } });
    try {
      await assert.rejects(new GantryClient({ url: `gantrys://${tlsHangUp.url}`, caFile: certs.ca, patienceMs: 300 }).stats(),
        (e) => !(e instanceof TLSError) && /if the broker requires a client certificate, pass certFile and keyFile/.test(e.message));
    } finally {
      tlsHangUp.close();
    }
  });

  test("TLS to a plain broker is a TLSError saying so", async () => {
    const client = new GantryClient({ url: `gantrys://${plain.url}`, caFile: certs.ca });
    await assert.rejects(client.stats(), (e) => e instanceof TLSError && /does not speak TLS.*use gantry:\/\//.test(e.message));
  });
});
