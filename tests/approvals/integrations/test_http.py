"""The one outgoing HTTP client: which webhook targets it refuses, and why, before anything is
sent (the connections it makes are tested where they are made: webhooks, the action, Slack)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.error import URLError
from urllib.request import Request

import pytest

from approvals.integrations.http import TargetRefused, target_problem, webhook_opener

REFUSED = [
    ("http://127.0.0.1:8000/hook", "127.0.0.1 is a loopback address"),
    # What the system resolver reads as 127.0.0.1 too.
    ("http://127.1/hook", "127.1 is a loopback address (127.0.0.1)"),
    ("http://2130706433/hook", "2130706433 is a loopback address (127.0.0.1)"),
    ("http://0x7f000001/hook", "0x7f000001 is a loopback address (127.0.0.1)"),
    ("http://[::1]/hook", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1 is a loopback address (127.0.0.1)"),
    ("http://[::ffff:a00:1]/hook", "::ffff:a00:1 is a private address (10.0.0.1)"),
    ("http://[2002:c0a8:101::]/hook", "2002:c0a8:101:: is a private address (192.168.1.1)"),
    ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe is a cloud metadata address"),
    ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
    ("http://172.16.0.9/hook", "172.16.0.9 is a private address"),
    ("http://192.168.1.20/hook", "192.168.1.20 is a private address"),
    ("http://[fd12:3456::1]/hook", "fd12:3456::1 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254 is a cloud metadata address"),
    ("http://[::ffff:169.254.169.254]/", "is a cloud metadata address (169.254.169.254)"),
    ("http://169.254.10.10/hook", "169.254.10.10 is a link-local address"),
    ("http://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("http://100.64.0.7/hook", "100.64.0.7 is not a public address"),
    ("http://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
    ("http://224.0.0.251/hook", "224.0.0.251 is a multicast address"),
    ("http://localhost:9000/hook", "localhost is a loopback name"),
    ("http://hooks.LOCALHOST./hook", "hooks.localhost is a loopback name"),
    ("http://metadata.google.internal/computeMetadata/v1/", "is a cloud metadata name"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_private_and_metadata_targets_are_refused_with_the_reason(url: str, reason: str) -> None:
    problem = target_problem(url, allow_private=False, resolve=False)
    assert problem is not None and reason in problem
    assert "webhook targets must be public" in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/signoff",
        "https://93.184.215.14/hook",
        "http://[2606:4700:4700::1111]:8443/hook",
        "https://8.8.8.8/hook",
        "https://[::ffff:8.8.8.8]/hook",
    ],
)
def test_public_targets_pass(url: str) -> None:
    assert target_problem(url, allow_private=False, resolve=False) is None


def test_allowing_private_targets_still_refuses_cloud_metadata() -> None:
    assert target_problem("http://127.0.0.1:9/x", allow_private=True, resolve=True) is None
    assert target_problem("http://10.0.0.5/x", allow_private=True, resolve=False) is None
    for url in ("http://169.254.169.254/", "http://[::ffff:169.254.169.254]/"):
        problem = target_problem(url, allow_private=True, resolve=False)
        assert problem is not None and "cloud metadata address" in problem


def test_a_name_is_resolved_when_asked() -> None:
    problem = target_problem("http://localhost:9/x", allow_private=False, resolve=True)
    assert problem is not None
    assert "localhost resolves to " in problem and "a loopback address" in problem


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "use an http:// or https:// URL"),
        ("file:///etc/passwd", "use an http:// or https:// URL"),
        ("http:///no-host", "the URL has no host"),
        ("http://[::1/x", "not a valid URL"),
    ],
)
def test_what_is_not_an_http_url_is_refused(url: str, message: str) -> None:
    problem = target_problem(url, allow_private=True, resolve=False)
    assert problem is not None and message in problem


@contextmanager
def raw_listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on 127.0.0.1 that keeps the first bytes of each connection, then hangs up."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                received.append(conn.recv(4096))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        done.set()
        thread.join(timeout=5)
        server.close()


def test_https_goes_to_the_checked_address_and_speaks_tls_to_the_name() -> None:
    with raw_listener() as (port, received):
        request = Request(f"https://localhost:{port}/hook", data=b"{}", method="POST")
        with pytest.raises(URLError) as refused:
            webhook_opener(allow_private=False).open(request, timeout=5)
        assert isinstance(refused.value.reason, TargetRefused)
        assert received == []  # refused before connecting

        with pytest.raises(URLError):  # the listener speaks no TLS
            webhook_opener(allow_private=True).open(request, timeout=5)
    (hello,) = received
    assert hello[:1] == b"\x16"  # a TLS handshake record, on an address that was checked...
    assert b"localhost" in hello  # ...with the name for SNI and the certificate check
