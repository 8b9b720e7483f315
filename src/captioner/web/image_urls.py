"""Fetching an image a client named by URL, without letting the server be turned against its own network.

A chat client may send ``{"type": "image_url", "image_url": {"url": "https://..."}}``. Fetching whatever
URL a stranger names would let anyone make the server read its own admin ports, the cloud's metadata
service or the home router (server-side request forgery). So a URL is fetched only when:

- its scheme is http or https and its host is one the operator listed (``CAPTIONER_IMAGE_URL_HOSTS``:
  exact names, or ``*.example.com`` for any name under it);
- every address the name resolves to is a public one: loopback, private, link-local (the metadata service
  169.254.169.254 among them), carrier-grade NAT, multicast and reserved addresses are refused *after* DNS
  resolution, and the connection goes to the very address that was checked (a second lookup could answer
  differently);
- each redirect is checked again by the same rules (at most :data:`MAX_REDIRECTS`);
- the body is at most ``max_bytes`` and the whole fetch takes at most ``timeout_s`` seconds.

The bytes then go through the one safe image loader like any upload.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urljoin, urlsplit

from captioner.errors import ImageError

MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class RefusedUrl(ImageError):
    """The URL may not be fetched (scheme, host, address or redirect), or its answer broke a limit."""


def public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address on the public internet; False for loopback, private, link-local, metadata, ..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast and address not in METADATA_ADDRESSES


@dataclass(frozen=True)
class ImageUrlPolicy:
    """Which URLs may be fetched, and the limits of one fetch."""

    hosts: tuple[str, ...] = ()  # allowed host names ("photos.example.com", "*.example.com"); empty: none
    max_bytes: int = 10 * 1024 * 1024  # largest body accepted
    timeout_s: float = 10.0  # the whole fetch, redirects included
    address_allowed: Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], bool] = public_address

    @classmethod
    def from_setting(cls, hosts: str, **limits) -> "ImageUrlPolicy":
        names = tuple(name.strip().lower().rstrip(".") for name in hosts.split(",") if name.strip())
        return cls(hosts=names, **limits)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for allowed in self.hosts:
            if allowed == "*" or host == allowed:
                return True
            if allowed.startswith("*.") and host.endswith(allowed[1:]):
                return True
        return False


def fetch_image_url(url: str, policy: ImageUrlPolicy) -> bytes:
    """The body behind ``url`` as the policy allows, or RefusedUrl saying why not."""
    deadline = time.monotonic() + policy.timeout_s
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        host, port = checked_target(parts, policy)
        address = resolved_address(host, port, policy)
        status, location, body = _get(parts, host, port, address, policy, deadline)
        if status in (301, 302, 303, 307, 308):
            if not location:
                raise RefusedUrl(f"the image URL redirected (HTTP {status}) without saying where")
            url = urljoin(url, location)
            continue
        if status != 200:
            raise RefusedUrl(f"the image URL answered HTTP {status}; check that the image is there")
        return body
    raise RefusedUrl(f"the image URL redirected more than {MAX_REDIRECTS} times")


def checked_target(parts, policy: ImageUrlPolicy) -> tuple[str, int]:
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl(f"image URLs must be data:, http: or https: URLs, not {parts.scheme or 'none'}:")
    host = parts.hostname or ""
    if not host:
        raise RefusedUrl("the image URL names no host")
    if not policy.host_allowed(host):
        if not policy.hosts:
            raise RefusedUrl("this server does not fetch images from URLs; send the image as a data: URL "
                             "(base64), or ask its admin to list the host in CAPTIONER_IMAGE_URL_HOSTS")
        raise RefusedUrl(f"this server does not fetch images from {host}; the hosts it fetches from are listed "
                         "in CAPTIONER_IMAGE_URL_HOSTS (or send the image as a data: URL)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RefusedUrl("the image URL's port is not a number") from None
    return host, port


def resolved_address(host: str, port: int, policy: ImageUrlPolicy) -> str:
    """The first address of ``host``, if every address it resolves to is allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise RefusedUrl(f"the image URL's host {host} could not be resolved") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = [a for a in addresses if not policy.address_allowed(a)]
    if not addresses or refused:
        raise RefusedUrl(f"the image URL's host {host} resolves to an address this server does not fetch from "
                         "(loopback, private, link-local or reserved)")
    return str(addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever a new DNS lookup would say."""

    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the checked address; the certificate is still verified against the host name."""

    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _get(parts, host: str, port: int, address: str, policy: ImageUrlPolicy, deadline: float):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise RefusedUrl(f"fetching the image URL took longer than {policy.timeout_s:g} seconds")
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = kind(host, port, address, timeout=remaining)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("GET", path, headers={"Accept": "image/*", "User-Agent": "captioner"})
        response = connection.getresponse()
        if response.status != 200:
            return response.status, response.getheader("Location"), b""
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > policy.max_bytes:
            raise _too_large(policy)
        chunks, size = [], 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RefusedUrl(f"fetching the image URL took longer than {policy.timeout_s:g} seconds")
            if connection.sock is not None:  # a trickling server cannot stretch one read past the deadline
                connection.sock.settimeout(remaining)
            chunk = response.read1(CHUNK_BYTES)
            if not chunk:
                break
            size += len(chunk)
            if size > policy.max_bytes:
                raise _too_large(policy)
            chunks.append(chunk)
        return 200, None, b"".join(chunks)
    except (OSError, http.client.HTTPException) as error:
        if isinstance(error, (TimeoutError, socket.timeout)):
            raise RefusedUrl(f"fetching the image URL took longer than {policy.timeout_s:g} seconds") from None
        raise RefusedUrl(f"the image URL could not be fetched ({type(error).__name__}: {error})") from None
    finally:
        connection.close()


class ImageUrlTooLarge(RefusedUrl):
    """The body is larger than the upload limit."""


def _too_large(policy: ImageUrlPolicy) -> ImageUrlTooLarge:
    return ImageUrlTooLarge(f"the image behind the URL is larger than {policy.max_bytes / 1024 / 1024:g} MB; "
                            "link a smaller image")
