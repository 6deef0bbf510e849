"""The one HTTP client of every call that leaves Signoff: webhook deliveries, the `webhook`
action and Slack's Web API (docs/webhooks.md, "Outgoing URLs").

- Redirects are never followed, whatever the method or the status: a 3xx is a failure
  (`RedirectRefused`). Followed, it would carry a signed request, or Slack's bearer token, to an
  address nobody configured.
- Webhook targets (subscription URLs, the `webhook` action's URL) must be public addresses.
  Loopback, private, link-local, shared (carrier-grade NAT), multicast, reserved and unspecified
  addresses are refused, IPv4 and IPv6 alike, also an IPv4 address written inside an IPv6 one
  (mapped, compatible, 6to4, NAT64, Teredo), unless ALLOW_PRIVATE_WEBHOOK_TARGETS is on; cloud
  metadata addresses are refused even then. A URL is checked where it is saved (`target_problem`)
  and again when it is called: the host is resolved, every address it resolves to must pass, and
  the connection is made to one of those addresses, so a name that resolves elsewhere between
  the check and the connection (DNS rebinding) gains nothing. Webhook calls use no proxy, which
  would resolve the name itself.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import re
import socket
import ssl
import urllib.error
import urllib.request
from email.message import Message
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Where clouds serve instance credentials: AWS, GCP, Azure, OpenStack, DigitalOcean (IPv4 and
# IPv6), AWS's container endpoint, Alibaba, Oracle.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192")
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# What the system resolver also reads as IPv4: 127.1, 2130706433, 0x7f000001, 0177.0.0.1.
_IPV4_SHORTHAND = re.compile(r"[0-9a-fA-FxX.]+")

PUBLIC_ONLY = "webhook targets must be public addresses"
ALLOW_HINT = f"{PUBLIC_ONLY} (set ALLOW_PRIVATE_WEBHOOK_TARGETS=true to allow private ones)"
METADATA_HINT = (
    f"{PUBLIC_ONLY} (cloud metadata addresses are refused even with ALLOW_PRIVATE_WEBHOOK_TARGETS)"
)


class TargetRefused(OSError):
    """A webhook target that is not a public address; nothing was sent."""


class RedirectRefused(urllib.error.HTTPError):
    """A 3xx answer: a failure, never followed."""

    def __init__(self, url: str, code: int, msg: str, hdrs: Message, fp: IO[bytes] | None):
        location = hdrs.get("Location")
        where = f" to {location}" if location else ""
        super().__init__(
            url,
            code,
            f"{msg}: redirect{where} not followed (outgoing calls never follow redirects)",
            hdrs,
            fp,
        )


# ----- which addresses


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, which is where it leads."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress, *, allow_private: bool) -> tuple[str, bool] | None:
    """Why this address is refused, and whether ALLOW_PRIVATE_WEBHOOK_TARGETS could allow it;
    None when it is public (or allowed)."""
    inner = _embedded_ipv4(address)
    target = inner or address
    shown = f" ({inner})" if inner else ""
    if address in METADATA_ADDRESSES or target in METADATA_ADDRESSES:
        return f"a cloud metadata address{shown}", False
    if allow_private:
        return None
    for test, what in (
        ("is_loopback", "a loopback address"),
        ("is_unspecified", "an unspecified address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
    ):
        # An IPv6 address carrying an IPv4 one is judged by where it leads: the ranges that
        # carry them are themselves "private" (::ffff:0:0/96) or "global" (2002::/16).
        if getattr(target, test):
            return f"{what}{shown}", True
    if not target.is_global or target.is_reserved:
        return f"not a public address{shown}", True
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _IPV4_SHORTHAND.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _resolved_problem(
    host: str, infos: list[tuple[Any, ...]], *, allow_private: bool
) -> tuple[str, bool] | None:
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].partition("%")[0])
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            what, allowable = problem
            if str(address) == host:
                return f"{host} is {what}", allowable
            return f"{host} resolves to {address}, {what}", allowable
    return None


def _refusal(problem: tuple[str, bool]) -> str:
    what, allowable = problem
    return f"{what}; {ALLOW_HINT if allowable else METADATA_HINT}"


def target_problem(url: str, *, allow_private: bool, resolve: bool) -> str | None:
    """What is wrong with a webhook target URL, or None. `resolve` looks the name up too (where
    it is saved); a name that does not resolve gets no verdict here, the call will check it."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "use an http:// or https:// URL"
    if not parts.hostname:
        return "the URL has no host"
    host = parts.hostname.rstrip(".")
    literal = _literal(host)
    if literal is not None:
        problem = address_problem(literal, allow_private=allow_private)
        if problem is None:
            return None
        what, allowable = problem
        written = f" ({literal})" if str(literal) != host and "(" not in what else ""
        return _refusal((f"{host} is {what}{written}", allowable))
    if resolve:
        try:
            infos = _resolve(host, port)
        except OSError:
            infos = []
        problem = _resolved_problem(host, infos, allow_private=allow_private)
        if problem:
            return _refusal(problem)
    if host in METADATA_NAMES:
        return _refusal((f"{host} is a cloud metadata name", False))
    if not allow_private and (host in LOOPBACK_NAMES or host.endswith(".localhost")):
        return _refusal((f"{host} is a loopback name", True))
    return None


# ----- connecting to an address that was checked


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _checked_connection(
    host: str, port: int, timeout: Any, source_address: Any, *, allow_private: bool
) -> socket.socket:
    infos = _resolve(host, port)
    problem = _resolved_problem(host, infos, allow_private=allow_private)
    if problem:
        raise TargetRefused(_refusal(problem))
    error: OSError | None = None
    for *_, sockaddr in infos:
        try:
            # A numeric address: create_connection parses it and looks nothing up again.
            return socket.create_connection((sockaddr[0], port), timeout, source_address)
        except OSError as exc:
            error = exc
    raise error or OSError(f"{host} resolves to no address")


class _CheckedHTTPConnection(http.client.HTTPConnection):
    allow_private = False

    def connect(self) -> None:
        self.sock = _checked_connection(
            self.host,
            self.port,
            self.timeout,
            self.source_address,
            allow_private=self.allow_private,
        )


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    allow_private = False

    def __init__(self, *args: Any, context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(*args, context=context, **kwargs)
        self.tls = context

    def connect(self) -> None:
        sock = _checked_connection(
            self.host,
            self.port,
            self.timeout,
            self.source_address,
            allow_private=self.allow_private,
        )
        # The certificate is checked against the name, the connection went to the address.
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, *, allow_private: bool) -> None:
        super().__init__()
        self.connection = type(
            "Connection", (_CheckedHTTPConnection,), {"allow_private": allow_private}
        )

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.connection, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, *, allow_private: bool) -> None:
        super().__init__()
        self.connection = type(
            "Connection", (_CheckedHTTPSConnection,), {"allow_private": allow_private}
        )

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self.connection, req, context=_tls())


class _ErrorsAndRedirectsFail(urllib.request.HTTPDefaultErrorHandler):
    def http_error_default(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, hdrs: Message
    ) -> NoReturn:
        if 300 <= code < 400:
            raise RedirectRefused(req.full_url, code, msg, hdrs, fp)
        raise urllib.error.HTTPError(req.full_url, code, msg, hdrs, fp)


def _opener(*handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    # Built by hand rather than by build_opener: no redirect handler, and no file://, ftp:// or
    # data: handlers either (UnknownHandler refuses them).
    opener = urllib.request.OpenerDirector()
    for handler in (
        *handlers,
        urllib.request.UnknownHandler(),
        urllib.request.HTTPErrorProcessor(),
        _ErrorsAndRedirectsFail(),
    ):
        opener.add_handler(handler)
    return opener


def webhook_opener(*, allow_private: bool) -> urllib.request.OpenerDirector:
    """For webhook targets: only public addresses (see the module's doc), no proxy."""
    return _opener(
        _CheckedHTTPHandler(allow_private=allow_private),
        _CheckedHTTPSHandler(allow_private=allow_private),
    )


def api_opener(
    *, proxy: str | None = None, tls: ssl.SSLContext | None = None
) -> urllib.request.OpenerDirector:
    """For a configured API (Slack's): any address, through `proxy` if given."""
    return _opener(
        urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(context=tls),
    )
