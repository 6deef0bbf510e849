"""Start, steer and stop the test provider from a test (a fixture per module or session)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

BASE_DIR = Path(__file__).resolve().parents[3]
CLIENT_ID = "signoff-client"
CLIENT_SECRET = "signoff-client-secret-for-tests-only"


class Provider:
    def __init__(self, folder: Path, process: subprocess.Popen, port: int) -> None:
        self.folder = folder
        self.process = process
        self.issuer = f"http://127.0.0.1:{port}/o"
        self.login_url = f"http://127.0.0.1:{port}/login/"

    def _control(self) -> dict[str, Any]:
        return json.loads((self.folder / "control.json").read_text())

    def _write(self, data: dict[str, Any]) -> None:
        draft = self.folder / "control.json.draft"
        draft.write_text(json.dumps(data))
        draft.replace(self.folder / "control.json")

    def person(self, username: str, **claims: Any) -> None:
        """Add or change one of the provider's people (password, email, given_name, groups...)."""
        data = self._control()
        data["people"].setdefault(username, {"password": f"{username}-password"}).update(claims)
        self._write(data)

    def faults(self, **faults: Any) -> None:
        """audience="other", foreign_key=True or userinfo_sub="someone"; faults() clears them."""
        data = self._control()
        data["faults"] = faults
        self._write(data)

    def settings(self, settings: Any, **extra: Any) -> None:
        """Point Signoff's settings (pytest-django's fixture) at this provider."""
        from accounts import sso

        settings.OIDC_ISSUER = self.issuer
        settings.OIDC_CLIENT_ID = CLIENT_ID
        settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
        settings.OIDC_SCOPES = "openid email profile"
        settings.OIDC_GROUPS_CLAIM = "groups"
        settings.OIDC_ALLOWED_DOMAINS = []
        settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, sso.BACKEND]
        # As workflow_app/settings.py does for OIDC_ISSUER: signing out may redirect there.
        policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
        policy["DIRECTIVES"]["form-action"].append(self.issuer.removesuffix("/o"))
        settings.CONTENT_SECURITY_POLICY = policy
        for name, value in extra.items():
            setattr(settings, name, value)
        sso.forget_provider()


@contextmanager
def running_provider(
    folder: Path, redirect_uris: list[str], logout_uris: list[str]
) -> Iterator[Provider]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "control.json").write_text(
        json.dumps(
            {
                "client": {
                    "id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "redirect_uris": redirect_uris,
                    "post_logout_redirect_uris": logout_uris,
                },
                "people": {},
                "faults": {},
            }
        )
    )
    log = (folder / "provider.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.accounts.oidc_provider.serve", str(folder)],
        cwd=BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        port = _wait_for_port(folder, process)
        provider = Provider(folder, process, port)
        response = requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=10)
        response.raise_for_status()
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_for_port(folder: Path, process: subprocess.Popen) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the test provider stopped: {(folder / 'provider.log').read_text()[-2000:]}"
            )
        if (folder / "port").exists():
            return int((folder / "port").read_text())
        time.sleep(0.05)
    raise RuntimeError("the test provider did not start within a minute")
