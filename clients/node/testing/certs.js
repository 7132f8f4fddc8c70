// Throwaway certificates for the TLS tests against a fake broker, made with the openssl command (Node can make
// keys but not X.509 certificates). Nothing is kept in the repository: they last two days and live in a
// temporary folder removed when the test process exits.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * Makes two CAs (`ca`, and `otherCa` that signed nothing the broker uses), a broker certificate for the IP
 * 127.0.0.1 only (an IP SAN, as the broker's own test certificates have), and client certificates signed by
 * each CA. Resolves the PEM paths: {dir, ca, otherCa, serverCert, serverKey, clientCert, clientKey,
 * strangerCert, strangerKey}; or null when openssl cannot be run (the tests using them are then skipped).
 */
export function makeCertificates() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "gantry-node-tls-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const file = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const ca = (name) => openssl("req", "-x509", ...newKey, "-keyout", file(`${name}.key`), "-out", file(`${name}.pem`),
    "-days", "2", "-subj", `/CN=gantry node test ${name}`, "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign");
  const leaf = (name, signer, extensions) => {
    writeFileSync(file(`${name}.ext`), extensions);
    openssl("req", ...newKey, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${name}`);
    openssl("x509", "-req", "-in", file(`${name}.csr`), "-CA", file(`${signer}.pem`), "-CAkey", file(`${signer}.key`),
      "-out", file(`${name}.pem`), "-days", "2", "-extfile", file(`${name}.ext`));
  };
  try {
    ca("ca");
    ca("other-ca");
    leaf("server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    leaf("client", "ca", "extendedKeyUsage=clientAuth\n");
    leaf("stranger", "other-ca", "extendedKeyUsage=clientAuth\n");
  } catch {
    return null;
  }
  return {
    dir, ca: file("ca.pem"), otherCa: file("other-ca.pem"), serverCert: file("server.pem"), serverKey: file("server.key"),
    clientCert: file("client.pem"), clientKey: file("client.key"), strangerCert: file("stranger.pem"), strangerKey: file("stranger.key"),
  };
}
