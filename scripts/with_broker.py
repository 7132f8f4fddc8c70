#!/usr/bin/env python3
"""Runs a command against a fresh, throwaway broker: gantryd on its own embedded PostgreSQL in a temporary
directory, on free loopback ports. The command gets GANTRY_URL (host:port of the JSON-RPC port) and
GANTRY_HTTP (host:port of the HTTP side); when it ends, the broker and its PostgreSQL are stopped and the
directory removed. The command's exit status is this script's.

With --secure it also starts two brokers that need tokens and speak TLS (certificates made with openssl for
the run), for the clients' security tests: GANTRY_SECURE_URL (TLS) and GANTRY_MTLS_URL (TLS with a client
certificate required), GANTRY_TEST_CA, GANTRY_TEST_CLIENT_CERT, GANTRY_TEST_CLIENT_KEY, and the tokens
GANTRY_TEST_ADMIN_TOKEN, GANTRY_TEST_WORKER_TOKEN, GANTRY_TEST_PRODUCER_TOKEN and GANTRY_TEST_MAIL_PRODUCER_TOKEN
(a producer limited to queue "mail").

Usage: scripts/with_broker.py [--gantryd PATH] [--secure] -- COMMAND [ARGS...]
       (default gantryd: $GANTRYD, else .build/debug/gantryd beside this script's repository)
"""
import argparse
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


TOKENS = {
    "GANTRY_TEST_ADMIN_TOKEN": "test-admin-token-0123456789",
    "GANTRY_TEST_WORKER_TOKEN": "test-worker-token-0123456789",
    "GANTRY_TEST_PRODUCER_TOKEN": "test-producer-token-012345",
    "GANTRY_TEST_MAIL_PRODUCER_TOKEN": "test-mail-producer-token-0123",
}


def make_certificates(directory):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as TestCertificates.swift."""
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*arguments):
        subprocess.run(["openssl", *arguments], cwd=directory, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Gantry Test CA")
    for name, subject, extensions in [
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
        ("client", "/CN=gantry-test-client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"),
    ]:
        (directory / f"{name}.ext").write_text(extensions)
        openssl("req", *curve, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {"GANTRY_TEST_CA": str(directory / "ca.pem"), "GANTRY_TEST_CLIENT_CERT": str(directory / "client.pem"),
            "GANTRY_TEST_CLIENT_KEY": str(directory / "client.key")}


def start(gantryd, directory, arguments=(), env=None):
    """Starts gantryd on its own embedded PostgreSQL in `directory`; returns (process, RPC address, HTTP address)."""
    directory.mkdir(exist_ok=True)
    os.chmod(directory, 0o755)
    log = open(directory / "gantryd.log", "wb")
    broker = subprocess.Popen(
        [gantryd, "--data-dir", str(directory / "data"), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", *arguments],
        stdout=subprocess.PIPE, stderr=log, env={**os.environ, **(env or {}), "GANTRY_EXIT_WITH_PID": str(os.getpid())})
    addresses = {}
    deadline = time.monotonic() + 120
    while len(addresses) < 2:
        line = broker.stdout.readline().decode()
        if not line or time.monotonic() > deadline:
            log.flush()
            broker.kill()
            sys.exit("with_broker: gantryd did not start:\n" + (directory / "gantryd.log").read_text()[-3000:])
        if line.startswith("gantryd listening on "):
            addresses["rpc"] = line.split()[-1]
        elif line.startswith("gantryd http on "):
            addresses["http"] = line.split()[-1]
    return broker, addresses["rpc"], addresses["http"]


def stop(broker):
    broker.send_signal(signal.SIGTERM)
    try:
        broker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        broker.kill()
        broker.wait()


def start_secure(gantryd, directory):
    """The two token-and-TLS brokers of --secure, and the variables that describe them."""
    certificates = make_certificates(directory)
    mail = hashlib.sha256(TOKENS["GANTRY_TEST_MAIL_PRODUCER_TOKEN"].encode()).hexdigest()
    config = directory / "secure.yml"
    config.write_text(f"tokens:\n  - name: mail-producer\n    role: producer\n    queues: [mail]\n    sha256: {mail}\n"
                      f"tls_cert: {directory / 'server.pem'}\ntls_key: {directory / 'server.key'}\n")
    env = {"GANTRY_ADMIN_TOKEN": TOKENS["GANTRY_TEST_ADMIN_TOKEN"], "GANTRY_WORKER_TOKEN": TOKENS["GANTRY_TEST_WORKER_TOKEN"],
           "GANTRY_PRODUCER_TOKEN": TOKENS["GANTRY_TEST_PRODUCER_TOKEN"]}
    secure, secure_rpc, _ = start(gantryd, directory / "secure", ["--config", str(config)], env)
    mutual, mutual_rpc, _ = start(gantryd, directory / "mutual", ["--config", str(config), "--tls-client-ca", str(directory / "ca.pem")], env)
    variables = {**certificates, **TOKENS, "GANTRY_SECURE_URL": f"gantrys://{secure_rpc}", "GANTRY_MTLS_URL": f"gantrys://{mutual_rpc}"}
    return [secure, mutual], variables


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gantryd", default=os.environ.get("GANTRYD", str(ROOT / ".build" / "debug" / "gantryd")))
    parser.add_argument("--secure", action="store_true", help="also start the token-and-TLS brokers (see above)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("give a command to run after --")
    if not os.access(options.gantryd, os.X_OK):
        sys.exit(f"with_broker: no gantryd at {options.gantryd}; build it first (swift build) or pass --gantryd")

    directory = pathlib.Path(tempfile.mkdtemp(prefix="gantry-broker-"))
    os.chmod(directory, 0o755)
    brokers = []
    try:
        broker, rpc, http = start(options.gantryd, directory / "plain")
        brokers.append(broker)
        variables = {"GANTRY_URL": rpc, "GANTRY_HTTP": http}
        if options.secure:
            secure, secure_variables = start_secure(options.gantryd, directory)
            brokers += secure
            variables.update(secure_variables)
        print(f"with_broker: gantryd at {rpc} (HTTP {http})" + (f"; TLS at {variables['GANTRY_SECURE_URL']}, mutual TLS at "
              f"{variables['GANTRY_MTLS_URL']}" if options.secure else ""), file=sys.stderr, flush=True)
        status = subprocess.call(command, env={**os.environ, **variables})
    finally:
        for broker in brokers:
            stop(broker)
        shutil.rmtree(directory, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
