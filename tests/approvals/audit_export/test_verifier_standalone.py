"""The verifier runs where Signoff does not: a Python with no Django to import and no database,
only the standard library and `cryptography`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.approvals.audit_export.conftest import export, flip_after, members, rewrite

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]

# -I: no PYTHON* variables, no user site, not the current directory on sys.path. Django is
# then made unimportable: any `import django` (by the verifier or what it imports) fails.
RUN = """
import runpy, sys
sys.path.insert(0, {root!r})
sys.modules["django"] = None
sys.argv = ["verify_bundle", *{args!r}]
try:
    runpy.run_module("approvals.verify_bundle", run_name="__main__")
finally:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("django", "psycopg", "celery"))
    assert loaded == ["django"] and sys.modules["django"] is None, loaded
"""


def run_verifier(*args: str) -> subprocess.CompletedProcess[str]:
    code = RUN.format(root=str(ROOT), args=list(args))
    return subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
    )


def test_it_verifies_a_bundle_with_django_unimportable(decided_request, public_key, tmp_path):
    path = export(tmp_path, "--include-files")
    result = run_verifier(str(path), "--public-key", str(public_key))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 1 requests, ")


def test_it_names_a_problem_and_exits_non_zero_with_django_unimportable(
    decided_request, public_key, tmp_path
):
    path = export(tmp_path)
    name = f"requests/{decided_request.pk}/artifacts.jsonl"
    tampered = rewrite(
        path, tmp_path / "t.zip", {name: flip_after(members(path)[name], b'"sha256":"')}
    )
    result = run_verifier(str(tampered), "--public-key", str(public_key))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith(f"FAILED: {name} line 1, field sha256: is ")


def test_a_missing_public_key_file_is_a_clear_failure(decided_request, tmp_path):
    path = export(tmp_path)
    result = run_verifier(str(path), "--public-key", str(tmp_path / "nope.pem"))
    assert result.returncode == 1
    assert "cannot read the public key" in result.stdout
