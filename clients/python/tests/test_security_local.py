"""Tokens and TLS without a real broker: URL parsing and precedence, the error table, and scripted brokers (plain
with a token check; TLS and mutual TLS with certificates made here by the ``openssl`` command) for what the
client itself must get right: the token in ``hello``, a refused ``hello`` raised once and not retried, clear
TLSErrors, and one TLS connection shared by many threads. tests/test_security.py does the same against gantryd.
"""
import asyncio
import json
import pathlib
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

import gantry
from gantry import _api
from gantry.aio import AsyncClient

pytestmark = pytest.mark.no_broker

SECRET = "s3cret-Token/with@odd:chars"
QUOTED = "s3cret-Token%2Fwith%40odd%3Achars"


@pytest.fixture(autouse=True)
def no_security_environment(monkeypatch):
    for name in ("GANTRY_URL", "GANTRY_TOKEN", "GANTRY_CA_FILE", "GANTRY_CERT_FILE", "GANTRY_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


# URLs, tokens, options.

def test_url_forms():
    forms = {
        "gantry://127.0.0.1:7441": ("127.0.0.1", 7441, False, None),
        "gantrys://127.0.0.1:7441": ("127.0.0.1", 7441, True, None),
        f"gantrys://{QUOTED}@broker.example:9000/": ("broker.example", 9000, True, SECRET),
        "gantry://tok@[::1]:7000": ("::1", 7000, False, "tok"),
        "GANTRYS://tok@h": ("h", 7440, True, "tok"),
        "host:7000": ("host", 7000, False, None),
        "host": ("host", 7440, False, None),
    }
    for url, expected in forms.items():
        address = _api.parse_address(url)
        assert (address.host, address.port, address.tls, address.token) == expected, url
    assert _api.parse_url("gantrys://t@h:1") == ("h", 1)


def test_bad_urls_are_refused_without_quoting_the_token():
    for bad in ("http://h:1", "gantry://@h:1", f"gantrys://{SECRET}@h:0", f"gantry://{SECRET}@h:port",
                f"gantrys://{SECRET}@"):
        with pytest.raises(ValueError) as caught:
            gantry.Client(bad)
        assert SECRET not in str(caught.value) and QUOTED not in str(caught.value)


def test_token_precedence_keyword_then_url_then_environment(monkeypatch):
    monkeypatch.setenv("GANTRY_TOKEN", "from-env")
    assert gantry.Client("h:1")._endpoint.token == "from-env"
    assert gantry.Client("gantry://from-url@h:1")._endpoint.token == "from-url"
    assert gantry.Client("gantry://from-url@h:1", token="from-keyword")._endpoint.token == "from-keyword"
    assert AsyncClient("gantry://from-url@h:1", token="from-keyword")._endpoint.token == "from-keyword"
    monkeypatch.setenv("GANTRY_URL", "gantry://in-gantry-url@h:1")
    assert gantry.Client()._endpoint.token == "in-gantry-url"
    monkeypatch.delenv("GANTRY_TOKEN")
    monkeypatch.delenv("GANTRY_URL")
    assert gantry.Client("h:1")._endpoint.token is None
    with pytest.raises(ValueError, match="token"):
        gantry.Client("h:1", token="")


def test_tls_is_chosen_by_scheme_or_keyword(monkeypatch, tmp_path):
    assert not gantry.Client("h:1").tls and gantry.Client("gantrys://h:1").tls
    assert gantry.Client("h:1", tls=True).tls and gantry.Client("gantry://h:1", tls=True).tls
    assert AsyncClient("gantrys://h:1").tls
    with pytest.raises(ValueError, match="tls=False"):
        gantry.Client("gantrys://h:1", tls=False)
    with pytest.raises(ValueError, match="ca_file given for a plain connection"):
        gantry.Client("h:1", ca_file="ca.pem")
    # The variables are for TLS only: a plain client ignores them, a TLS one reads them (here: a missing file).
    monkeypatch.setenv("GANTRY_CA_FILE", str(tmp_path / "missing.pem"))
    assert not gantry.Client("h:1").tls
    with pytest.raises(ValueError, match="GANTRY_CA_FILE"):
        gantry.Client("gantrys://h:1")
    with pytest.raises(ValueError, match="key_file given without cert_file"):
        gantry.Client("gantrys://h:1", ca_file=None, key_file="k.pem", tls=True)


def test_no_repr_shows_the_token():
    url = f"gantrys://{QUOTED}@127.0.0.1:7441"
    shown = [repr(gantry.Client(url, name="app")), repr(AsyncClient(url)), repr(_api.parse_address(url)),
             repr(gantry.Client(url)._endpoint), repr(gantry.Client("h:1", token=SECRET))]
    assert shown[0] == "<gantry.Client 127.0.0.1:7441 tls 'app'>"
    for text in shown:
        assert SECRET not in text and QUOTED not in text and "s3cret" not in text


def test_hello_carries_the_token():
    assert _api.hello_params("app", None, "t")["token"] == "t"
    assert "token" not in _api.hello_params("app", None)


def test_worker_checks_its_connection_options_when_made(tmp_path):
    with pytest.raises(ValueError, match="ca_file"):
        gantry.Worker("gantrys://h:1", ["q"], ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="tls=False"):
        gantry.Worker("gantrys://h:1", ["q"], tls=False)
    assert gantry.Worker("gantry://t@h:1", ["q"], token="k").client_options == {"token": "k"}


def test_error_table_names_unauthorized_and_forbidden():
    assert gantry.ERRORS[-32001] == ("unauthorized", False) and gantry.ERRORS[-32009] == ("forbidden", False)
    forbidden = gantry.RPCError(-32009, "no", {"role": "producer", "method": "reserve"})
    assert (forbidden.name, forbidden.retryable, str(forbidden)) == ("forbidden", False, "forbidden (-32009): no")
    assert gantry.RPCError(-32001, "no").name == "unauthorized"
    assert issubclass(gantry.TLSError, gantry.ConnectionLost) and issubclass(gantry.TLSError, OSError)


# A scripted broker that checks tokens (plain TCP, or TLS when given a context).

class TokenBroker:
    """Answers ``hello`` with -32001 unless its token is ``token``, then ``stats`` and ``echo`` (params back).
    Counts connections and keeps each hello's params. A line that is not JSON (a TLS ClientHello) gets a parse
    error with id null, as gantryd answers."""

    def __init__(self, token="right", context=None):
        self.token = token
        self.context = context
        self.connections = 0
        self.hellos = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme="gantry", token=None):
        return f"{scheme}://{token + '@' if token else ''}127.0.0.1:{self.port}"

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            with conn, conn.makefile("rb") as lines:
                for line in lines:
                    conn.sendall(json.dumps(self._answer(line)).encode() + b"\n")
        except (OSError, ValueError):
            pass

    def _answer(self, line):
        try:
            request = json.loads(line)
        except ValueError:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "not JSON"}}
        reply = {"jsonrpc": "2.0", "id": request["id"]}
        if request["method"] == "hello":
            self.hellos.append(request.get("params", {}))
            if request.get("params", {}).get("token") != self.token:
                reply["error"] = {"code": -32001, "message": "This broker requires a token."}
            else:
                reply["result"] = {"broker": "fake", "protocol": 1, "session_id": "s-%d" % self.connections}
        elif request["method"] == "echo":
            reply["result"] = request.get("params")
        else:
            reply["result"] = {"queues": {}}
        return reply

    def close(self):
        self.server.close()


@pytest.fixture
def broker():
    brokers = []

    def start(**options):
        brokers.append(TokenBroker(**options))
        return brokers[-1]
    yield start
    for item in brokers:
        item.close()


def test_token_goes_in_hello_and_a_refused_hello_is_raised_once(broker):
    fake = broker()
    with gantry.Client(fake.url(token="right"), name="app") as client:
        assert client.stats() == {"queues": {}}
    assert fake.hellos[-1] == {"client": "app", "protocol": 1, "token": "right"}

    client = gantry.Client(fake.url(token="wrong"), patience=30)
    started = time.monotonic()
    for attempt in (1, 2):
        with pytest.raises(gantry.RPCError) as caught:
            client.stats()
        assert (caught.value.code, caught.value.name) == (-32001, "unauthorized")
        assert fake.connections == 1 + attempt  # one connection per call: no reconnect loop
    assert time.monotonic() - started < 5 and client.connections_opened == 0
    client.close()


def test_async_token_and_refused_hello(broker):
    fake = broker()

    async def main():
        async with AsyncClient(fake.url(token="wrong"), token="right") as client:  # the keyword wins
            assert await client.stats() == {"queues": {}}
        client = AsyncClient(fake.url(), token="wrong", patience=30)
        with pytest.raises(gantry.RPCError) as caught:
            await client.stats()
        assert caught.value.code == -32001 and client.connections_opened == 0
        await client.close()
    asyncio.run(main())
    assert [hello["token"] for hello in fake.hellos] == ["right", "wrong"] and fake.connections == 2


def test_worker_with_a_refused_token_stops_and_raises(broker):
    fake = broker()
    worker = gantry.Worker(fake.url(token="wrong"), ["q"], poll_ms=100, patience=30)
    started = time.monotonic()
    with pytest.raises(gantry.RPCError) as caught:
        worker.run()
    assert caught.value.code == -32001 and time.monotonic() - started < 5 and fake.connections == 1


# TLS, with a CA, a broker certificate for 127.0.0.1 and a client certificate made by openssl.

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certificate(directory, name, subject, extensions, issuer="ca"):
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=directory)
    (directory / f"{name}.ext").write_text(extensions + "\nsubjectKeyIdentifier=hash\n"
                                           "authorityKeyIdentifier=keyid,issuer\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
             "-set_serial", str(abs(hash(name)) % 10**9 + 1), "-days", "2", "-out", f"{name}.pem",
             "-extfile", f"{name}.ext", cwd=directory)


def _make_ca(directory, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=gantry test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make test certificates")
    directory = tmp_path_factory.mktemp("pki")
    _make_ca(directory, "ca")
    _make_ca(directory, "other-ca")
    _make_certificate(directory, "broker", "/CN=127.0.0.1",
                      "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    _make_certificate(directory, "client", "/CN=pytest-client", "extendedKeyUsage=clientAuth")
    _make_certificate(directory, "stranger", "/CN=stranger", "extendedKeyUsage=clientAuth", issuer="other-ca")
    return {name: str(directory / name) for name in ("ca.pem", "other-ca.pem", "broker.pem", "broker.key",
                                                       "client.pem", "client.key", "stranger.pem", "stranger.key")}


def _server_context(pki, require_client_certificate=False):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["broker.pem"], pki["broker.key"])
    if require_client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki["ca.pem"])
    return context


def test_tls_with_the_ca_and_a_token(broker, pki):
    fake = broker(context=_server_context(pki))
    with gantry.Client(fake.url("gantrys", "right"), ca_file=pki["ca.pem"]) as client:
        assert client.stats() == {"queues": {}} and client.connections_opened == 1
    with gantry.Client(fake.url(), tls=True, token="right", ca_file=pki["ca.pem"]) as client:
        assert client.stats() == {"queues": {}}
    assert [hello["token"] for hello in fake.hellos] == ["right", "right"]


def test_tls_certificate_failures_are_clear_and_not_retried(broker, pki, monkeypatch):
    fake = broker(context=_server_context(pki))
    started = time.monotonic()
    with pytest.raises(gantry.TLSError, match=r"not trusted .*ca_file=.*GANTRY_CA_FILE"):
        gantry.Client(fake.url("gantrys", "right"), patience=30).stats()
    with pytest.raises(gantry.TLSError, match=r"not signed by the CA in ca_file"):
        gantry.Client(fake.url("gantrys", "right"), ca_file=pki["other-ca.pem"], patience=30).stats()
    with pytest.raises(gantry.TLSError, match=r"is not for 'localhost'"):
        gantry.Client(f"gantrys://right@localhost:{fake.port}", ca_file=pki["ca.pem"], patience=30).stats()
    assert time.monotonic() - started < 5
    monkeypatch.setenv("GANTRY_CA_FILE", pki["ca.pem"])  # the variable stands in for the keyword
    assert gantry.Client(fake.url("gantrys", "right")).stats() == {"queues": {}}


def test_tls_to_a_plain_broker_and_plain_to_a_tls_one(broker, pki):
    plain = broker()
    with pytest.raises(gantry.TLSError, match="did not answer in TLS"):
        gantry.Client(plain.url("gantrys", "right"), ca_file=pki["ca.pem"], patience=30).stats()
    tls = broker(context=_server_context(pki))
    with pytest.raises(gantry.ConnectionLost, match="if the broker serves TLS, use gantrys://"):
        gantry.Client(tls.url("gantry", "right"), patience=0.5, timeout=5).stats()


def test_a_tls_alert_to_a_plain_client_says_to_use_gantrys():
    """What a TLS broker may answer plain JSON with: an alert record (protocol_version), then it hangs up."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"\x15\x03\x01\x00\x02\x02\x46")
        conn.close()
    threading.Thread(target=answer, daemon=True).start()
    url = "127.0.0.1:%d" % server.getsockname()[1]
    with pytest.raises(gantry.TLSError, match="answered in TLS: use gantrys://"):
        gantry.Client(url, patience=30).stats()
    threading.Thread(target=answer, daemon=True).start()
    with pytest.raises(gantry.TLSError, match="answered in TLS"):
        asyncio.run(AsyncClient(url, patience=30).stats())
    server.close()


def test_mutual_tls(broker, pki):
    fake = broker(context=_server_context(pki, require_client_certificate=True))
    with gantry.Client(fake.url("gantrys", "right"), ca_file=pki["ca.pem"], cert_file=pki["client.pem"],
                       key_file=pki["client.key"]) as client:
        assert client.stats() == {"queues": {}}
    started = time.monotonic()
    with pytest.raises(gantry.TLSError, match="requires a client certificate") as caught:
        gantry.Client(fake.url("gantrys", "right"), ca_file=pki["ca.pem"], patience=30).stats()
    assert "cert_file" in str(caught.value)
    with pytest.raises(gantry.TLSError, match="refused the client certificate in cert_file"):
        gantry.Client(fake.url("gantrys", "right"), ca_file=pki["ca.pem"], cert_file=pki["stranger.pem"],
                      key_file=pki["stranger.key"], patience=30).stats()
    assert time.monotonic() - started < 5  # not retried


def test_client_certificate_from_the_environment(broker, pki, monkeypatch):
    fake = broker(context=_server_context(pki, require_client_certificate=True))
    monkeypatch.setenv("GANTRY_CA_FILE", pki["ca.pem"])
    monkeypatch.setenv("GANTRY_CERT_FILE", pki["client.pem"])
    monkeypatch.setenv("GANTRY_KEY_FILE", pki["client.key"])
    with gantry.Client(fake.url("gantrys", "right")) as client:
        assert client.stats() == {"queues": {}}
    # A certificate passed in is not paired with the variable's key (that of another certificate).
    with pytest.raises(ValueError, match="cannot be loaded"):  # stranger.pem holds no key, and none is taken
        gantry.Client(fake.url("gantrys"), cert_file=pki["stranger.pem"])
    assert gantry.Client(fake.url("gantrys"), cert_file=pki["stranger.pem"],
                         key_file=pki["stranger.key"])._endpoint.cert_file == pki["stranger.pem"]


def test_one_tls_connection_shared_by_many_threads(broker, pki):
    """The reader thread and the writers never enter OpenSSL at once; large lines both ways make writes wait
    for the socket (and reads happen meanwhile)."""
    fake = broker(context=_server_context(pki))
    client = gantry.Client(fake.url("gantrys", "right"), ca_file=pki["ca.pem"])
    errors = []

    def caller(n):
        try:
            for i in range(20):
                payload = {"n": n, "i": i, "pad": "x" * (2_000_000 if i % 10 == 0 else 100)}
                assert client.call("echo", payload) == payload
        except Exception as error:  # surfaced below
            errors.append(error)
    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and client.connections_opened == 1
    client.close()


def test_async_tls(broker, pki):
    fake = broker(context=_server_context(pki))
    mutual = broker(context=_server_context(pki, require_client_certificate=True))

    async def main():
        async with AsyncClient(fake.url("gantrys", "right"), ca_file=pki["ca.pem"]) as client:
            results = await asyncio.gather(*(client.call("echo", {"n": n}) for n in range(50)))
            assert results == [{"n": n} for n in range(50)]
        with pytest.raises(gantry.TLSError, match="ca_file"):
            await AsyncClient(fake.url("gantrys", "right"), patience=30).stats()
        async with AsyncClient(mutual.url("gantrys", "right"), ca_file=pki["ca.pem"], cert_file=pki["client.pem"],
                               key_file=pki["client.key"]) as client:
            assert await client.stats() == {"queues": {}}
        with pytest.raises(gantry.TLSError, match="requires a client certificate"):
            await AsyncClient(mutual.url("gantrys", "right"), ca_file=pki["ca.pem"], patience=30).stats()
    asyncio.run(asyncio.wait_for(main(), 60))
