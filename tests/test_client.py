"""The Suptask client over real sockets on 127.0.0.1: TLS, keep-alive, errors, proxies."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import trustme

from bulksync.api import SuptaskClient
from bulksync.engine import run_operations
from bulksync.plan import Operation
from bulksync.results import RowResult

TID = "9b2d7e41-5c3a-4f86-8e1b-0a7d6c5f4e32"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: list[tuple[str, int]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.peers.append(self.client_address)
        out = json.dumps({"ticketId": TID, "echo": body,
                          "auth": self.headers["Authorization"]}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    # shutdown() waits for the serving loop's next look: every 10 ms, not the default 0.5 s.
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    _Handler.peers = []
    try:
        yield f"https://localhost:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def _post_twice(url: str) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with SuptaskClient(token="tls-token", base_url=url, max_connections=1) as client:
            return [await client.request("POST", "/ticket", {"description": f"é {i}"}) for i in range(2)]
    return asyncio.run(go())


def test_https_with_a_ca_the_user_trusts(ca: trustme.CA, tls_server: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))  # how a user trusts a corporate CA, too
    first, second = _post_twice(tls_server)
    assert first.status_code == second.status_code == 201
    assert first.json()["echo"] == {"description": "é 0"}
    assert second.json()["auth"] == "Api-Token tls-token"
    # Both requests went over one kept-alive TLS connection.
    assert _Handler.peers[0] == _Handler.peers[1]


def test_an_untrusted_certificate_is_a_connect_error(tls_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _post_twice(tls_server)
    assert _Handler.peers == []


def test_one_tls_context_is_kept_per_bundle_and_follows_ssl_cert_file(
        ca: trustme.CA, tls_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients share the TLS context made for the bundle the environment names, and a change
    of SSL_CERT_FILE in the same process (a notebook, these tests) is a context of its own."""
    from bulksync.api import _verified_context

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert _verified_context() is _verified_context()
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _post_twice(tls_server)  # certifi's context, now kept
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    assert [r.status_code for r in _post_twice(tls_server)] == [201, 201]
    other = trustme.CA()  # the same file rewritten in place, naming another CA: not trusted now
    other.cert_pem.write_to_path(str(pem))
    os.utime(pem, ns=(pem.stat().st_atime_ns, pem.stat().st_mtime_ns + 1_000_000_000))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _post_twice(tls_server)
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _post_twice(tls_server)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_is_retried_as_not_sent() -> None:
    """Nothing listens: a create may be sent again (it was never processed), and fails in the end."""
    url = f"http://127.0.0.1:{_free_port()}/api"
    results: dict[int, RowResult] = {}

    async def go() -> int:
        async with SuptaskClient(token="t", base_url=url) as client:
            stats = await run_operations(client, [Operation(2, "create", None, {"description": "x"})],
                                         results, max_attempts=2, backoff=0.01)
            return stats.requests
    assert asyncio.run(go()) == 2
    assert results[2].status == "failed" and "could not connect" in results[2].error


def test_could_not_connect_names_the_host_and_the_cause_never_the_request_headers() -> None:
    """The message is built from the error, not from the request it carries (whose headers hold
    the token), even when the error's own text quotes them, as some proxies' errors do."""
    token = "hdr-secret-token-91c4"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused {request.headers['Authorization']}", request=request)

    results: dict[int, RowResult] = {}

    async def go() -> None:
        async with SuptaskClient(token=token, base_url="https://api.example.com",
                                 transport=httpx.MockTransport(refuse)) as client:
            await run_operations(client, [Operation(2, "create", None, {"description": "x"})],
                                 results, max_attempts=2, backoff=0.01)
    asyncio.run(go())
    error = results[2].error
    assert error.startswith("could not connect to api.example.com: ConnectError: proxy refused")
    assert token not in error and "Authorization" not in error and "headers" not in error.lower()


def test_a_silent_server_is_a_read_timeout() -> None:
    """The server takes the request and never answers: ReadTimeout, so a create becomes uncertain."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    results: dict[int, RowResult] = {}

    async def go() -> None:
        async with SuptaskClient(token="t", base_url=url, timeout=0.3) as client:
            await run_operations(client, [Operation(2, "create", None, {"description": "x"})], results)
    try:
        asyncio.run(go())
    finally:
        listener.close()
        for s in accepted:
            s.close()
    assert results[2].status == "uncertain"
    assert "ReadTimeout" in results[2].error


def test_a_server_that_hangs_up_mid_answer_is_not_a_connect_error() -> None:
    """A dropped connection after the request was sent must never look like 'not sent'."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{\"ticketId\"")
        conn.close()
    threading.Thread(target=serve, daemon=True).start()

    async def go() -> None:
        async with SuptaskClient(token="t", base_url=f"http://127.0.0.1:{listener.getsockname()[1]}") as c:
            await c.request("POST", "/ticket", {"description": "x"})
    try:
        with pytest.raises(httpx.TransportError) as caught:
            asyncio.run(go())
    finally:
        listener.close()
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)


def _proxy() -> tuple[socket.socket, list[bytes]]:
    """A stand-in proxy on loopback: it notes the first line of each request, then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    lines: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            lines.append(conn.recv(65536).split(b"\r\n", 1)[0])
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return listener, lines


def test_the_environments_proxy_is_used_but_never_for_loopback(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    listener, lines = _proxy()
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def post(url: str) -> None:
        async with SuptaskClient(token="t0ken", base_url=url) as client:
            await client.request("POST", "/ticket", {"description": "x"})
    try:
        with pytest.raises(httpx.TransportError):
            asyncio.run(post("https://api.example.com/v2"))  # through the proxy, which hangs up
        assert lines == [b"CONNECT api.example.com:443 HTTP/1.1"]
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        _Handler.peers = []
        try:
            asyncio.run(post(f"http://127.0.0.1:{server.server_address[1]}/api"))
        finally:
            server.shutdown()
            server.server_close()
        assert len(_Handler.peers) == 1 and len(lines) == 1  # straight to the sandbox
    finally:
        listener.close()


def test_an_ipv6_loopback_url_builds_a_client() -> None:
    client = SuptaskClient(token="t0ken", base_url="http://[::1]:8080/api")
    asyncio.run(client.aclose())


def test_a_broken_proxy_setting_does_not_stop_a_rehearsal(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    """A loopback URL reads no proxy settings at all, so one httpx cannot use is harmless."""
    import bulksync
    from bulksync.sandbox import Sandbox

    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:9")
    sheet = tmp_path / "t.csv"
    sheet.write_text("description\nx\n")
    with Sandbox(token="t0ken") as sb:
        result = bulksync.push(sheet, token="t0ken", api_url=sb.url,
                               form_id="6a1f4c2e-93b7-4d58-a0e1-7c2b9f3d5e84", channel="C076K6Y74L1")
    assert result.ok and result.counts["created"] == 1
