"""Image URLs are fetched only from allowed hosts at public addresses, redirects checked again, within size and
time limits; tested against a real local HTTP server. The server listens on loopback, so the tests that must
reach it allow exactly 127.0.0.1 and prove that every other rule still holds."""

from __future__ import annotations

import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from captioner.web.image_urls import ImageUrlPolicy, ImageUrlTooLarge, RefusedUrl, fetch_image_url, public_address

BODY = b"\x89PNG pretend image bytes" * 10


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server name
        self.server.paths.append(self.path)
        if self.path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/redirect-to/"):].replace("|", "/"))
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/image.png":
            self._send(BODY)
        elif self.path == "/big-undeclared":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):  # 10 seconds, one byte at a time
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.send_response(404)
            self.end_headers()

    def _send(self, data: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.paths = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def only_loopback_one(address) -> bool:
    return address == ipaddress.ip_address("127.0.0.1")


def url(server, path: str, host: str = "localhost") -> str:
    return f"http://{host}:{server.server_address[1]}{path}"


def test_public_addresses_only():
    for refused in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "169.254.169.254", "100.64.0.1", "::1",
                    "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"):
        assert not public_address(ipaddress.ip_address(refused)), refused
    assert public_address(ipaddress.ip_address("93.184.215.14"))


def test_an_allowed_host_is_fetched(server):
    policy = ImageUrlPolicy(hosts=("localhost",), address_allowed=only_loopback_one)
    assert fetch_image_url(url(server, "/image.png"), policy) == BODY


def test_loopback_is_refused_after_resolution_and_never_contacted(server):
    before = len(server.paths)
    for host in ("localhost", "127.0.0.1"):
        with pytest.raises(RefusedUrl, match="loopback, private"):
            fetch_image_url(url(server, "/image.png", host), ImageUrlPolicy(hosts=(host,)))
    assert len(server.paths) == before


def test_hosts_not_listed_and_other_schemes_are_refused(server):
    with pytest.raises(RefusedUrl, match="CAPTIONER_IMAGE_URL_HOSTS"):
        fetch_image_url(url(server, "/image.png"), ImageUrlPolicy())
    with pytest.raises(RefusedUrl, match="does not fetch images from localhost"):
        fetch_image_url(url(server, "/image.png"), ImageUrlPolicy(hosts=("photos.example.com",)))
    with pytest.raises(RefusedUrl, match="file:"):
        fetch_image_url("file:///etc/passwd", ImageUrlPolicy(hosts=("*",)))
    assert ImageUrlPolicy(hosts=("*.example.com",)).host_allowed("a.b.example.com")
    assert not ImageUrlPolicy(hosts=("*.example.com",)).host_allowed("example.com.evil.net")


def test_redirects_are_checked_again(server):
    policy = ImageUrlPolicy(hosts=("localhost",), address_allowed=only_loopback_one)
    port = server.server_address[1]
    assert fetch_image_url(url(server, "/redirect-to/|image.png"), policy) == BODY
    with pytest.raises(RefusedUrl, match="does not fetch images from 127.0.0.2"):  # a host not listed
        fetch_image_url(url(server, f"/redirect-to/http:||127.0.0.2:{port}|image.png"), policy)
    listed = ImageUrlPolicy(hosts=("localhost", "127.0.0.2"), address_allowed=only_loopback_one)
    before = len(server.paths)
    with pytest.raises(RefusedUrl, match="loopback, private"):  # listed, but an address that is not allowed
        fetch_image_url(url(server, f"/redirect-to/http:||127.0.0.2:{port}|image.png"), listed)
    assert len(server.paths) == before + 1  # the redirect itself only
    with pytest.raises(RefusedUrl, match="redirected more than"):
        fetch_image_url(url(server, "/redirect-to/|redirect-to||loop"), policy)


def test_size_and_time_limits(server):
    small = ImageUrlPolicy(hosts=("localhost",), address_allowed=only_loopback_one, max_bytes=100)
    with pytest.raises(ImageUrlTooLarge):  # declared too large
        fetch_image_url(url(server, "/image.png"), small)
    with pytest.raises(ImageUrlTooLarge):  # larger than declared (no Content-Length)
        fetch_image_url(url(server, "/big-undeclared"), small)
    quick = ImageUrlPolicy(hosts=("localhost",), address_allowed=only_loopback_one, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(RefusedUrl, match="longer than 0.5 seconds"):
        fetch_image_url(url(server, "/slow"), quick)
    assert time.monotonic() - started < 6  # long before the server would have finished
    with pytest.raises(RefusedUrl, match="HTTP 404"):
        fetch_image_url(url(server, "/missing"), quick)
