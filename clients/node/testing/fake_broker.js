// A scripted fake broker, plain TCP or TLS, for what a real one cannot be made to do on demand (refuse hello
// in a chosen way, present a chosen certificate), and for tests that need no broker at all.
import net from "node:net";
import tls from "node:tls";

export const ok = (request, result) => ({ jsonrpc: "2.0", id: request.id, result });
export const refuse = (request, error) => ({ jsonrpc: "2.0", id: request.id, error });
const welcome = (request, number) => [ok(request, { broker: "fake", protocol: 1, session_id: `s${number}` })];

/**
 * Listens on 127.0.0.1 and answers each request line with `answer(request, connectionNumber, socket)`'s lines
 * (objects or raw strings); hello is answered by `hello(request, connectionNumber)` (default: welcome).
 * `tls`: options of tls.createServer ({key, cert, ca, requestCert, rejectUnauthorized}) for a TLS broker.
 * Resolves {url (host:port), port, seen (requests, each with its `connection` number), connections() (how many
 * were served: for TLS, past the handshake), accepted() (TCP connections, handshake or not), servernames (the SNI
 * each TLS client sent; false for none), close()}.
 */
export async function fakeBroker({ answer = () => [], hello = welcome, tls: tlsOptions } = {}) {
  const seen = [];
  const servernames = [];
  let connections = 0;
  const serve = (socket) => {
    const number = ++connections;
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk;
      let end;
      while ((end = buffered.indexOf("\n")) !== -1) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        let request;
        try {
          request = JSON.parse(line);
        } catch {
          socket.write(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } }) + "\n");
          continue;
        }
        seen.push({ connection: number, ...request });
        const reply = (request.method === "hello" ? hello(request, number, socket) : answer(request, number, socket)) ?? [];
        for (const item of reply) socket.write((typeof item === "string" ? item : JSON.stringify(item)) + "\n");
      }
    });
    socket.on("error", () => {});
  };
  let server;
  if (tlsOptions) {
    server = tls.createServer({
      ...tlsOptions,
      SNICallback: (name, done) => { servernames.push(name); done(null, null); },
    }, serve);
    // A client hello without SNI does not reach SNICallback: count those from the raw connection instead.
    server.on("secureConnection", (socket) => { if (!socket.servername) servernames.push(false); });
    server.on("tlsClientError", () => {});
  } else {
    server = net.createServer(serve);
  }
  const sockets = new Set(); // raw TCP connections, TLS handshake or not
  server.on("connection", (socket) => { sockets.add(socket); socket.once("close", () => sockets.delete(socket)); });
  let accepted = 0;
  server.on("connection", () => { accepted += 1; });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `127.0.0.1:${port}`, port, seen, servernames, connections: () => connections, accepted: () => accepted,
    close: () => { server.close(); for (const socket of sockets) socket.destroy(); },
  };
}
