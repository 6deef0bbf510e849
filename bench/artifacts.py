"""Documents: upload and download throughput, and the web process's memory during an upload.

    .venv/bin/python bench/artifacts.py [--small-runs 10] [--large-runs 3]

What runs: the embedded default (SQLite, files under var/media/, DEBUG on) in a temporary
SIGNOFF_VAR_DIR, served by one Daphne process that this script starts, with one request waiting
for a reviewer. Through the web view (session sign-in, CSRF, multipart POST to
/requests/<id>/documents/) and through the API (token, multipart POST to
/api/v1/instances/<id>/artifacts/), 1 MB and 20 MB files of random bytes are uploaded and then
downloaded (/requests/<id>/documents/<name>/v<n>/ and .../versions/<n>/content/), each
timed end to end from this client on the same machine.

While each 20 MB upload runs, a thread samples the Daphne process's resident memory
(/proc/<pid>/status VmRSS) every 5 ms; the peak growth over the RSS just before the upload is
printed against the file's size. The uploads must stream (Django spools bodies above 2.5 MB to
a temporary file; hashing and storing read it in chunks): the target is a growth under twice
the file's size. Nothing is asserted; PASS/MISS is printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
MB = 1024 * 1024
RSS_FIELD = os.environ.get("BENCH_RSS_FIELD", "VmRSS") + ":"
PASSWORD = "bench-password-0123"

SEED = f"""
from django.utils import timezone
from django.contrib.auth.models import Group
from accounts.models import User
from approvals.services.api_tokens import token_create
from approvals.services.definitions import definition_import
from approvals.services.instances import instance_start
manager = Group.objects.create(name="manager")
rob = User.objects.create_user("rob", password="{PASSWORD}", first_name="Rob")
rob.groups.add(manager)
rita = User.objects.create_user("rita", password="{PASSWORD}", first_name="Rita")
definition_import(config={{
    "id": "review", "title": "Review", "initial": "review",
    "states": {{
        "review": {{"meta": {{"task": {{"roles": ["manager"]}}}}, "on": {{"APPROVE": "done"}}}},
        "done": {{"type": "final"}},
    }},
}}, actor=None, publish=True, now=timezone.now())
instance = instance_start(definition_key="review", context={{}}, actor=rita, now=timezone.now())
_, token = token_create(user=rob, name="bench", actor=rob, now=timezone.now())
print(instance.pk, token)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(RSS_FIELD):
            return int(line.split()[1])
    return 0


class PeakRSS:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = rss_kb(pid)
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> PeakRSS:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.running = False
        self.thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 1024


def web_client(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120)
    client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={
            "username": "rob",
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text[:300]
    return client


def asgi_probe(instance_id: int, token: str) -> None:
    """In this process (run with the server's environment): the 20 MB API upload through
    Django's ASGI handler fed 8 KB body chunks as Daphne sends them, under tracemalloc: what
    Signoff's own code (parsing, sniffing, hashing, storing, the audit) allocates."""
    import asyncio
    import tracemalloc

    import django

    django.setup()
    from django.core.asgi import get_asgi_application

    app = get_asgi_application()
    head = (
        b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n\r\nblob\r\n--XyZ\r\n'
        b'Content-Disposition: form-data; name="file"; filename="blob.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    tail = b"\r\n--XyZ--\r\n"
    size = 20 * MB
    length = len(head) + size + len(tail)

    def pieces():
        yield head
        left = size
        while left:
            n = min(8192, left)
            yield secrets.token_bytes(n)
            left -= n
        yield tail

    source = pieces()
    sent: list[dict] = []

    async def receive() -> dict:
        chunk = next(source, None)
        if chunk is None:
            await asyncio.sleep(3600)
        return {"type": "http.request", "body": chunk, "more_body": chunk is not tail}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/api/v1/instances/{instance_id}/artifacts/",
        "raw_path": b"",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"multipart/form-data; boundary=XyZ"),
            (b"content-length", str(length).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    asyncio.run(app(scope, receive, send))
    peak = tracemalloc.get_traced_memory()[1] - base
    status = sent[0]["status"] if sent else "?"
    print(f"{status} {peak / MB:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small-runs", type=int, default=10)
    parser.add_argument("--large-runs", type=int, default=3)
    parser.add_argument("--asgi-probe", nargs=2, metavar=("INSTANCE", "TOKEN"), help="internal")
    args = parser.parse_args()
    if args.asgi_probe:
        sys.path.insert(0, str(ROOT))
        asgi_probe(int(args.asgi_probe[0]), args.asgi_probe[1])
        return

    var = Path(tempfile.mkdtemp(prefix="signoff-bench-artifacts-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "SIGNOFF_VAR_DIR": str(var),
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "workflow_app.settings",
    }
    run = {"cwd": ROOT, "env": env, "check": True, "capture_output": True, "text": True}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], **run)
    seeded = subprocess.run([PYTHON, "manage.py", "shell", "-c", SEED], **run).stdout.split()
    instance_id, token = int(seeded[-2]), seeded[-1]
    port = free_port()
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "workflow_app.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        web = web_client(base)
        api = httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {token}"})
        version = 0
        print(f"bench/artifacts.py: embedded default, one Daphne process (pid {server.pid})")
        # The server's own share: a 20 MB body POSTed to a URL that never reads it (Daphne
        # receives and queues the whole body before the application runs).
        blob = var / "blob-20.bin"
        blob.write_bytes(secrets.token_bytes(20 * MB))
        unread = []
        for _ in range(args.large_runs):
            with PeakRSS(server.pid) as rss, blob.open("rb") as handle:
                httpx.post(f"{base}/healthz", content=handle.read(), timeout=120)
            unread.append(rss.growth_mb)
        print(f"20 MB body never read by the application: peak RSS growth {max(unread):.1f} MB")
        header = ("size", "via", "upload MB/s", "download MB/s", "peak RSS growth (runs)")
        print(f"{header[0]:>6} {header[1]:>4} {header[2]:>12} {header[3]:>14}  {header[4]}")
        results = []
        for size_mb, runs in ((1, args.small_runs), (20, args.large_runs)):
            for via in ("web", "api"):
                ups, downs, growths = [], [], []
                for _ in range(runs):
                    path = var / f"blob-{size_mb}.bin"
                    path.write_bytes(secrets.token_bytes(size_mb * MB))
                    with PeakRSS(server.pid) as rss, path.open("rb") as handle:
                        start = time.perf_counter()
                        if via == "web":
                            response = web.post(
                                f"/requests/{instance_id}/documents/",
                                data={"name": "blob"},
                                files={"file": ("blob.bin", handle, "application/octet-stream")},
                                headers={"X-CSRFToken": web.cookies["csrftoken"]},
                            )
                            ok = (
                                response.status_code == 302
                                and "Added blob" in web.get(f"/requests/{instance_id}/").text
                            )
                        else:
                            response = api.post(
                                f"/api/v1/instances/{instance_id}/artifacts/",
                                data={"name": "blob"},
                                files={"file": ("blob.bin", handle, "application/octet-stream")},
                            )
                            ok = response.status_code == 201
                        elapsed = time.perf_counter() - start
                    if not ok:
                        raise SystemExit(
                            f"upload failed: {response.status_code} {response.text[:300]}"
                        )
                    version += 1
                    ups.append(size_mb / elapsed)
                    growths.append(rss.growth_mb)
                    api_url = f"/api/v1/instances/{instance_id}/artifacts/blob/versions/{version}/"
                    url = (
                        f"/requests/{instance_id}/documents/blob/v{version}/"
                        if via == "web"
                        else f"{api_url}content/"
                    )
                    client = web if via == "web" else api
                    start = time.perf_counter()
                    received = 0
                    with client.stream("GET", url) as download:
                        for chunk in download.iter_bytes():
                            received += len(chunk)
                    downs.append(size_mb / (time.perf_counter() - start))
                    assert received == size_mb * MB
                peak = max(growths)
                results.append((size_mb, via, peak))
                print(
                    f"{size_mb:>4} MB {via:>4} {statistics.median(ups):>12.1f} "
                    f"{statistics.median(downs):>14.1f}  {peak:.1f} MB "
                    f"({', '.join(f'{g:.1f}' for g in growths)})"
                )
        probe = subprocess.run(
            [PYTHON, __file__, "--asgi-probe", str(instance_id), token], **run
        ).stdout.split()
        print(
            f"20 MB API upload through Django's ASGI handler in-process: answer {probe[-2]}, "
            f"peak Python allocations (tracemalloc) {probe[-1]} MB"
        )
        print()
        for size_mb, via, peak in results:
            if size_mb == 20:
                verdict = "PASS" if peak < 2 * size_mb else "MISS"
                print(f"{verdict}: 20 MB upload via {via}: peak RSS growth {peak:.1f} MB < 40 MB")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
