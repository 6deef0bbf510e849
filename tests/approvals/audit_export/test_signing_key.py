"""AUDIT_SIGNING_KEY: PEM in the variable or a file's path, generated once under var/ in
development, refused loudly when it is not an Ed25519 private key; the demo's auditors."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from workflow_app import env


def pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_a_pem_in_the_variable_or_a_files_path_is_read(monkeypatch, tmp_path: Path):
    text = pem(Ed25519PrivateKey.generate())
    monkeypatch.setenv("AUDIT_SIGNING_KEY", text)
    assert env.signing_key("AUDIT_SIGNING_KEY", debug=False, keep_file=tmp_path / "k") == text
    monkeypatch.setenv("AUDIT_SIGNING_KEY", text.replace("\n", "\\n"))
    assert env.signing_key("AUDIT_SIGNING_KEY", debug=False, keep_file=tmp_path / "k") == text
    path = tmp_path / "signing.pem"
    path.write_text(text)
    monkeypatch.setenv("AUDIT_SIGNING_KEY", str(path))
    assert env.signing_key("AUDIT_SIGNING_KEY", debug=False, keep_file=tmp_path / "k") == text
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/nowhere/signing.pem", "is neither a PEM key nor a file that can be read"),
        ("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----", "is not an unencrypted"),
        (pem(ec.generate_private_key(ec.SECP256R1())), "not an Ed25519 key"),
    ],
)
def test_a_bad_value_stops_the_process_naming_the_variable(
    monkeypatch, tmp_path: Path, value: str, message: str
):
    monkeypatch.setenv("AUDIT_SIGNING_KEY", value)
    with pytest.raises(ImproperlyConfigured, match=f"AUDIT_SIGNING_KEY.*{message}") as raised:
        env.signing_key("AUDIT_SIGNING_KEY", debug=True, keep_file=tmp_path / "k")
    assert "openssl genpkey -algorithm ed25519" in str(raised.value)


def test_development_generates_one_key_once_and_every_process_gets_it(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("AUDIT_SIGNING_KEY", raising=False)
    keep = tmp_path / "var" / "audit_signing_key.pem"
    keys: list[str | None] = []
    threads = [
        threading.Thread(
            target=lambda: keys.append(
                env.signing_key("AUDIT_SIGNING_KEY", debug=True, keep_file=keep)
            )
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and keys[0] == keep.read_text().strip() + "\n"
    assert isinstance(serialization.load_pem_private_key(keys[0].encode(), None), Ed25519PrivateKey)
    assert keep.stat().st_mode & 0o777 == 0o600


def test_production_without_a_key_starts_and_the_export_says_what_is_missing(
    monkeypatch, tmp_path: Path
):
    monkeypatch.delenv("AUDIT_SIGNING_KEY", raising=False)
    assert env.signing_key("AUDIT_SIGNING_KEY", debug=False, keep_file=tmp_path / "k") is None


@pytest.mark.django_db
def test_audit_public_key_prints_the_pem_of_the_configured_key(settings):
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = pem(key)
    out = io.StringIO()
    call_command("audit_public_key", stdout=out)
    assert (
        out.getvalue()
        == key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.django_db
def test_the_demo_gives_the_export_to_admin_and_the_process_owner():
    from accounts.demo import ensure_demo_users
    from accounts.models import User

    ensure_demo_users()
    assert User.objects.get(username="owner").has_perm("approvals.export_audit")
    assert User.objects.get(username="admin").has_perm("approvals.export_audit")
    assert not User.objects.get(username="bob").has_perm("approvals.export_audit")
