"""A real ASGI server (Daphne in a subprocess) and changes made by other processes, for the
live tests and bench/push_latency.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import BASE_DIR, child_env, manage, migrate

SEED = """
import json
from django.test import Client
from accounts.models import User
from tests.approvals.flows import publish, review_flow
from tests.factories import GroupFactory, UserFactory
publish(review_flow())
rita = UserFactory(username="rita", first_name="Rita", last_name="Requester")
rob = UserFactory(username="rob", first_name="Rob", last_name="Reviewer",
                  groups=[GroupFactory(name="manager")])
otto = UserFactory(username="otto", first_name="Otto", last_name="Outsider")
sessions = {}
for user in (rita, rob, otto):
    client = Client()
    client.force_login(user)
    sessions[user.username] = client.cookies["sessionid"].value
print("SESSIONS=" + json.dumps(sessions))
"""

START = """
from django.utils import timezone
from accounts.models import User
from approvals.services.instances import instance_start
instance = instance_start(definition_key="review", context={{"title": {title!r}, "amount": 5}},
                          actor=User.objects.get(username="rita"), now=timezone.now())
print("INSTANCE=%d" % instance.pk)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seed(env: dict[str, str]) -> dict[str, str]:
    migrate(env)
    done = manage("shell", "-c", SEED, env=env)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("SESSIONS="))
    return json.loads(line.removeprefix("SESSIONS="))


def start_request(env: dict[str, str], title: str) -> int:
    """Start a request as Rita from another process (what a second web process or the worker
    would commit)."""
    done = manage("shell", "-c", START.format(title=title), env=env)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("INSTANCE="))
    return int(line.removeprefix("INSTANCE="))


class Daphne:
    def __init__(
        self, env: dict[str, str], log: Path, port: int | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.args = args
        self.env = env
        self.log_path = log
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/notifications/"

    def start(self, *, healthy: bool = True) -> Daphne:
        """Start it and wait until it serves: /healthz answers 200, or (healthy=False, for a
        server whose broker is down on purpose) answers at all."""
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                *self.args,
                "workflow_app.asgi:application",
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                with urllib.request.urlopen(self.http + "/healthz", timeout=2):
                    return self
            except urllib.error.HTTPError:
                if not healthy:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("daphne did not start:\n" + self.log_path.read_text())
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def seeded_daphne(
    tmp_path: Path, more: str
) -> Iterator[tuple[dict[str, str], dict[str, str], Daphne]]:
    """The seeded people and whoever `more` (a `manage.py shell` script that prints
    SESSION=<key>) signs in as "mia", behind a running Daphne: (env, sessions, daphne)."""
    env = child_env(tmp_path)
    sessions = seed(env)
    done = manage("shell", "-c", more, env=env)
    assert done.returncode == 0, done.stderr
    sessions["mia"] = next(
        line.removeprefix("SESSION=")
        for line in done.stdout.splitlines()
        if line.startswith("SESSION=")
    )
    daphne = Daphne(env, tmp_path / "daphne.log").start()
    try:
        yield env, sessions, daphne
    finally:
        daphne.stop()
