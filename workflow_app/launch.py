"""One command to run Signoff, one to test it; needs nothing but python3 (standard library).

    python3 workflow_app/launch.py run [--host 127.0.0.1] [--port 8000]
    python3 workflow_app/launch.py test [pytest arguments...]

Both create .venv and install the pinned dependencies when pyproject.toml changed since the last
install, then continue under .venv/bin/python. `run` migrates, loads the demo data and supervises
Daphne (HTTP and WebSocket), a Celery worker and Celery beat until Ctrl-C or until one of them dies.

Run it as a file, never with -m: importing the workflow_app package imports Celery, which the
system python3 does not have.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, NoReturn

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_DIR = BASE_DIR / ".venv"
VENV_PYTHON = VENV_DIR / "bin" / "python"
STAMP_FILE = VENV_DIR / ".signoff-install-stamp"
PYPROJECT = BASE_DIR / "pyproject.toml"
REQUIRED_PYTHON = (3, 11)

# Running as a file puts workflow_app/ first on sys.path, where workflow_app/celery.py would
# shadow the real celery package for anything imported later; the project root belongs there.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(BASE_DIR)

STOP_GRACE_SECONDS = 15.0
ASGI_APP = "workflow_app.asgi:application"


def say(message: str) -> None:
    print(f"launch | {message}", flush=True)


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"launch | error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


# --- bootstrap: system python3 -> .venv -------------------------------------------------------


def _install_stamp() -> str:
    # The Python version is part of the stamp so a venv rebuilt by another interpreter reinstalls.
    digest = hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()
    return f"{digest} python{sys.version_info.major}.{sys.version_info.minor}"


def _in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV_DIR.resolve()


def _check_python() -> None:
    if sys.version_info[:2] != REQUIRED_PYTHON:
        wanted = ".".join(map(str, REQUIRED_PYTHON))
        fail(
            f"Signoff needs Python {wanted} (pyproject.toml), this is "
            f"{sys.version.split()[0]}; run this script with python{wanted}."
        )


def _create_venv() -> None:
    say(f"creating the virtual environment in {VENV_DIR.relative_to(BASE_DIR)}/")
    subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True)


def _install() -> None:
    say('installing the pinned dependencies (pip install -e ".[test]")')
    subprocess.run(
        [str(VENV_PYTHON), "-m", "pip", "install", "-q", "-e", ".[test]"],
        cwd=BASE_DIR,
        check=True,
    )


def bootstrap() -> None:
    """Make .venv current, then continue this very command under .venv/bin/python."""
    if not _in_venv():
        _check_python()
        if not VENV_PYTHON.exists():
            _create_venv()
        # Re-exec first: the stamp and the install are then done by the venv's own interpreter.
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    if sys.version_info[:2] != REQUIRED_PYTHON:
        fail(f"{VENV_DIR} was made with Python {sys.version.split()[0]}; delete it and run again")
    stamp = _install_stamp()
    current = STAMP_FILE.read_text().strip() if STAMP_FILE.exists() else ""
    if current != stamp:
        try:
            _install()
        except subprocess.CalledProcessError as exc:
            fail(
                f"pip install failed (exit {exc.returncode}); see its output above. If .venv "
                "itself is broken (an interrupted first run), delete it and run again."
            )
        # Written only after a successful install, so a failed one is retried next time.
        STAMP_FILE.write_text(stamp + "\n")


# --- run: prepare, then supervise the three processes -----------------------------------------


def _manage(*args: str) -> None:
    say("manage.py " + " ".join(args))
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR)
    if result.returncode != 0:
        fail(f"manage.py {args[0]} failed (exit {result.returncode})", result.returncode)


def _settings_debug() -> bool:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_app.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return bool(settings.DEBUG)
    except ImproperlyConfigured as exc:
        fail(f"configuration: {exc}", 2)


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Daphne sets SO_REUSEADDR too, so a port in TIME_WAIT is not reported as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _parent_death_hook() -> Callable[[], None] | None:
    """A pre-exec hook so that a child gets SIGTERM when the launcher dies (Linux only).

    If the launcher is killed outright (SIGKILL), its children must not survive it and keep the
    port and the broker. libc is loaded here, before any fork: the hook runs between fork and
    exec, where importing or loading a library could deadlock.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


class Child:
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    def start(self, env: dict[str, str], preexec: Callable[[], None] | None) -> None:
        # Own session: a Ctrl-C in the terminal reaches only the launcher, which then stops the
        # children itself instead of all of them racing on the same signal.
        self.process = subprocess.Popen(
            self.argv,
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )

    def start_output(self) -> None:
        self._pump = threading.Thread(target=self._copy_output, daemon=True)
        self._pump.start()

    def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stream: IO[bytes] = self.process.stdout
        prefix = f"{self.name:<6} | ".encode()
        for line in iter(stream.readline, b""):
            sys.stdout.buffer.write(prefix + line)
            sys.stdout.buffer.flush()

    def poll(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signum)

    def kill_group(self) -> None:
        # The worker's pool processes share its process group; SIGKILL on the group leaves none.
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def finish_output(self) -> None:
        if self._pump is not None:
            self._pump.join(timeout=2)


def stop_all(children: list[Child]) -> None:
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        assert child.process is not None
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {STOP_GRACE_SECONDS:.0f}s; killing it")
        # Also after a clean exit: a pool process orphaned by its parent is killed here.
        child.kill_group()
        child.process.wait()
        child.finish_output()


def supervise(children: list[Child], env: dict[str, str]) -> int:
    stop_requested: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        stop_requested.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGHUP, request_stop)

    preexec = _parent_death_hook()
    for child in children:
        child.start(env, preexec)
        assert child.process is not None
        say(f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv[1:])}")
    # Output threads start only after the last fork: forking while threads run is unsafe.
    for child in children:
        child.start_output()

    exit_code = 0
    while not stop_requested:
        dead = [(child, code) for child in children if (code := child.poll()) is not None]
        if dead:
            child, code = dead[0]
            say(f"{child.name} exited with code {code}; stopping the others")
            # A child killed by a signal reports -N; shells say 128+N for that.
            exit_code = 128 - code if code < 0 else (code or 1)
            break
        time.sleep(0.2)
    else:
        say(f"received {signal.Signals(stop_requested[0]).name}; stopping")

    stop_all(children)
    say("all processes stopped")
    return exit_code


LOCAL_HOSTS = {"127.0.0.1", "0.0.0.0", "::", "::1", "localhost"}


def child_environment(environ: Mapping[str, str], *, host: str, port: int) -> dict[str, str]:
    """What web, worker and beat run with: the caller's environment, plus the address that
    links in e-mails, Slack messages and webhook payloads point to (SITE_URL) when the caller
    named none, so that `run --port 8200` does not send people to port 8000."""
    env = dict(environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(environ))
    env.setdefault("DJANGO_SETTINGS_MODULE", "workflow_app.settings")
    if not env.get("SITE_URL"):
        name = "localhost" if host in LOCAL_HOSTS else (f"[{host}]" if ":" in host else host)
        env["SITE_URL"] = f"http://{name}:{port}"
    return env


def metrics_dir(environ: Mapping[str, str]) -> Path:
    """Where the processes write their Prometheus samples (settings.PROMETHEUS_MULTIPROC_DIR)."""
    var_dir = Path(environ.get("SIGNOFF_VAR_DIR") or BASE_DIR / "var")
    return Path(environ.get("PROMETHEUS_MULTIPROC_DIR") or var_dir / "metrics")


def clear_metrics_dir(path: Path) -> None:
    """prometheus-client's multiprocess mode wants the folder emptied before the processes
    start: files of an earlier run would be added to this one's counts."""
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.glob("*.db"):
        entry.unlink(missing_ok=True)


def command_run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        fail(f"--port {args.port} is not a TCP port")
    os.chdir(BASE_DIR)
    debug = _settings_debug()
    _manage("migrate", "--noinput")
    _manage("seed_demo")
    if not debug:
        _manage("collectstatic", "--noinput")
    if not _port_free(args.host, args.port):
        fail(f"{args.host}:{args.port} is already in use; choose another with --port")

    env = child_environment(os.environ, host=args.host, port=args.port)
    clear_metrics_dir(Path(env["PROMETHEUS_MULTIPROC_DIR"]))
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "workflow_app"]
    if env.get("LOG_FORMAT", "").strip().lower() == "json":
        celery.append("--quiet")  # no banner: every line of the output is a JSON object
    children = [
        Child(
            "web",
            # A handshake may wait on the database and Redis during a reconnect storm; Daphne's
            # default (5 s) would drop it, and the tab would come back later with the rest.
            [
                python,
                "-m",
                "daphne",
                "-b",
                args.host,
                "-p",
                str(args.port),
                "--websocket_connect_timeout",
                "30",
                # No Daphne access log: its lines carry query strings (signed links, tokens);
                # the web process logs each request itself (signoff.access), without them.
                "-v",
                "0",
                ASGI_APP,
            ],
        ),
        Child("worker", [*celery, "worker", "-l", "INFO"]),
        Child("beat", [*celery, "beat", "-l", "INFO"]),
    ]
    host = f"[{args.host}]" if ":" in args.host else args.host
    say(f"Signoff on http://{host}:{args.port}/ (Ctrl-C stops everything)")
    return supervise(children, env)


def command_test(pytest_args: list[str]) -> NoReturn:
    os.chdir(BASE_DIR)
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *pytest_args])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 workflow_app/launch.py", description="Run or test Signoff."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="migrate, load demo data, start web + worker + beat")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    commands.add_parser(
        "test", help="run the test suite; further arguments go to pytest", add_help=False
    )
    # Everything after `test` belongs to pytest, including options argparse would reject.
    if argv[:1] == ["test"]:
        bootstrap()
        command_test(argv[1:])
    args = parser.parse_args(argv)
    bootstrap()
    return command_run(args)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        # Ctrl-C during the install or migrations: nothing has been started yet.
        sys.exit(130)
