"""The signed bundle and the offline verifier: what is in it, that it verifies, and that an
edit to any part of it is found and named with its place."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from approvals.audit_chain import body_hash
from approvals.models import AuditEvent
from approvals.verify_bundle import main as verify_main
from tests.approvals.audit_export.conftest import PDF, export, flip, flip_after, members, rewrite

pytestmark = pytest.mark.django_db


def verify(path: Path, key: Path, capsys) -> tuple[int, str]:
    status = verify_main([str(path), "--public-key", str(key)])
    return status, capsys.readouterr().out.strip()


def test_the_bundle_holds_each_chain_its_documents_and_definition_and_verifies(
    decided_request, open_request, public_key, tmp_path, capsys
):
    path = export(tmp_path, "--include-files")
    files = members(path)
    a, b = decided_request.pk, open_request.pk
    assert set(files) == {
        "manifest.jsonl",
        "manifest.sig",
        f"requests/{a}/events.jsonl",
        f"requests/{a}/artifacts.jsonl",
        f"requests/{a}/files/quote/v1/quote.pdf",
        f"requests/{a}/files/quote/v2/quote.pdf",
        f"requests/{b}/events.jsonl",
        "definitions/review/v1.json",
    }
    lines = [json.loads(line) for line in files[f"requests/{a}/events.jsonl"].splitlines()]
    stored = list(AuditEvent.objects.filter(instance=decided_request).order_by("seq"))
    assert [line["hash"] for line in lines] == [e.hash for e in stored]
    assert all(body_hash(line) == line["hash"] for line in lines)
    decided = next(line for line in lines if line["event"] == "task.decided")
    assert decided["data"]["comment"] == "Fits the budget" and decided["actor_name"] == "rob"

    header, *entries = [json.loads(line) for line in files["manifest.jsonl"].splitlines()]
    assert header["requests"] == 2 and header["events"] == len(lines) + len(
        AuditEvent.objects.filter(instance=open_request)
    )
    decided_request.refresh_from_db()
    assert (entries[0]["head_seq"], entries[0]["head_hash"]) == (
        decided_request.audit_seq,
        decided_request.audit_head,
    )
    versions = [json.loads(line) for line in files[f"requests/{a}/artifacts.jsonl"].splitlines()]
    assert versions[0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert files[f"requests/{a}/files/quote/v1/quote.pdf"] == PDF
    assert json.loads(files["definitions/review/v1.json"])["id"] == "review"

    assert verify(path, public_key, capsys) == (0, f"OK: 2 requests, {header['events']} events")


def test_without_files_only_the_hashes_are_in_and_it_verifies(
    decided_request, public_key, tmp_path, capsys
):
    path = export(tmp_path, "--instance", str(decided_request.pk))
    assert not [name for name in members(path) if "/files/" in name]
    status, out = verify(path, public_key, capsys)
    assert status == 0 and out.startswith("OK: 1 requests")


def _tampered(tmp_path: Path, decided_request, edit) -> Path:
    path = export(tmp_path, "--include-files")
    files = members(path)
    return rewrite(path, tmp_path / "tampered.zip", edit(files, decided_request.pk))


@pytest.mark.parametrize(
    ("part", "edit", "named"),
    [
        (
            "an event",
            lambda f, a: {
                f"requests/{a}/events.jsonl": flip(
                    f[f"requests/{a}/events.jsonl"], b'"actor_name":"rob"', b'"actor_name":"bob"'
                )
            },
            "requests/{a}/events.jsonl line 3, field hash: does not match the content of event #3",
        ),
        (
            "the manifest",
            lambda f, a: {"manifest.jsonl": flip(f["manifest.jsonl"], b'"Laptops"', b'"Laptopz"')},
            "manifest.jsonl: its SHA-256 is",
        ),
        (
            "the signature",
            lambda f, a: {"manifest.sig": flip_after(f["manifest.sig"], b'"signature": "')},
            "manifest.sig, field signature: does not verify",
        ),
        (
            "an artifact hash",
            lambda f, a: {
                f"requests/{a}/artifacts.jsonl": flip_after(
                    f[f"requests/{a}/artifacts.jsonl"], b'"sha256":"'
                )
            },
            "requests/{a}/artifacts.jsonl line 1, field sha256: is",
        ),
        (
            "a file",
            lambda f, a: {
                f"requests/{a}/files/quote/v1/quote.pdf": flip(
                    f[f"requests/{a}/files/quote/v1/quote.pdf"], b"%PDF-1.4", b"%PDF-1.5"
                )
            },
            "requests/{a}/files/quote/v1/quote.pdf: its bytes hash to",
        ),
        (
            "a MAC, outside the hashed fields",
            lambda f, a: {
                f"requests/{a}/events.jsonl": flip_after(
                    f[f"requests/{a}/events.jsonl"], b'"mac":"'
                )
            },
            "requests/{a}/events.jsonl: its SHA-256 differs",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else None,
)
def test_an_edit_in_each_part_is_found_and_named(
    decided_request, public_key, tmp_path, capsys, part, edit, named
):
    tampered = _tampered(tmp_path, decided_request, edit)
    status, out = verify(tampered, public_key, capsys)
    assert status == 1, part
    assert out.startswith("FAILED: " + named.format(a=decided_request.pk)), out


def test_an_event_removed_or_a_chain_cut_short_is_named(
    decided_request, public_key, tmp_path, capsys
):
    path = export(tmp_path)
    name = f"requests/{decided_request.pk}/events.jsonl"
    lines = members(path)[name].splitlines(keepends=True)
    gap = rewrite(path, tmp_path / "gap.zip", {name: b"".join([lines[0], *lines[2:]])})
    status, out = verify(gap, public_key, capsys)
    assert status == 1 and out.startswith(f"FAILED: {name} line 2, field seq: is 3 where #2")
    short = rewrite(path, tmp_path / "short.zip", {name: b"".join(lines[:-1])})
    status, out = verify(short, public_key, capsys)
    assert status == 1 and f"FAILED: {name}: the chain ends at #{len(lines) - 1}" in out


def test_a_wrong_public_key_is_named_with_both_key_ids(
    decided_request, public_key, tmp_path, capsys
):
    path = export(tmp_path)
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    status, out = verify(path, other, capsys)
    assert status == 1
    assert out.startswith("FAILED: manifest.sig: the bundle says it was signed by key")
    assert "wrong public key" in out


def test_a_truncated_zip_a_missing_file_and_a_damaged_member_are_named(
    decided_request, public_key, tmp_path, capsys
):
    path = export(tmp_path, "--include-files")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    status, out = verify(truncated, public_key, capsys)
    assert status == 1 and "not a zip archive, or truncated" in out

    file = f"requests/{decided_request.pk}/files/quote/v2/quote.pdf"
    missing = rewrite(path, tmp_path / "missing.zip", {file: None})
    status, out = verify(missing, public_key, capsys)
    assert status == 1 and out.startswith(f"FAILED: {file}: missing from the bundle"), out

    unsigned = rewrite(path, tmp_path / "unsigned.zip", {"manifest.sig": None})
    status, out = verify(unsigned, public_key, capsys)
    assert status == 1 and out.startswith("FAILED: manifest.sig: missing from the bundle")

    # A byte flipped in the archive itself, stored uncompressed: the zip's own CRC names it.
    stored = tmp_path / "stored.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(stored, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    raw = bytearray(stored.read_bytes())
    at = raw.index(b"%PDF-1.4")
    raw[at + 5] ^= 1
    stored.write_bytes(bytes(raw))
    status, out = verify(stored, public_key, capsys)
    assert status == 1 and "damaged in the archive" in out and "quote.pdf" in out


def test_a_file_slipped_into_the_archive_is_named(decided_request, public_key, tmp_path, capsys):
    path = export(tmp_path)
    extra = tmp_path / "extra.zip"
    rewrite(path, extra, {})
    with zipfile.ZipFile(extra, "a") as zf:
        zf.writestr("requests/999/events.jsonl", b"")
    status, out = verify(extra, public_key, capsys)
    assert status == 1
    assert out == "FAILED: requests/999/events.jsonl: in the archive but not listed in the manifest"


def test_the_signature_covers_the_manifest_digest_and_key_id(decided_request, tmp_path):
    from approvals.audit_chain import signed_statement
    from approvals.audit_export.signing import private_key

    path = export(tmp_path)
    files = members(path)
    signature = json.loads(files["manifest.sig"])
    assert signature["manifest_sha256"] == hashlib.sha256(files["manifest.jsonl"]).hexdigest()
    private_key().public_key().verify(
        base64.b64decode(signature["signature"]),
        signed_statement(
            manifest_sha256=signature["manifest_sha256"], signing_key_id=signature["key_id"]
        ),
    )


def test_the_range_selects_a_workflows_requests_by_start_day(
    decided_request, open_request, public_key, tmp_path, capsys
):
    day = decided_request.created_at.date().isoformat()
    path = export(tmp_path, "--workflow", "review", "--since", day, "--until", day)
    header = json.loads(members(path)["manifest.jsonl"].splitlines()[0])
    assert header["requests"] == 2 and header["scope"]["workflow"] == "review"
    later = export(tmp_path, "--since", "2099-01-01", name="later.zip")
    assert json.loads(members(later)["manifest.jsonl"].splitlines()[0])["requests"] == 0
    assert verify(later, public_key, capsys) == (0, "OK: 0 requests, 0 events")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instance", "1", "--workflow", "review"], "not both"),
        (["--instance", "424242"], "no request 424242"),
        (["--workflow", "nope"], "no workflow 'nope'"),
        (["--since", "2026-13-01"], "is not a date"),
        (["--since", "2026-12-02", "--until", "2026-12-01"], "starts (2026-12-02) after it ends"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_written(decided_request, tmp_path, args, message):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("export_audit", *args, "--out", str(out / "out.zip"))
    assert list(out.iterdir()) == []


def test_without_a_signing_key_the_export_says_how_to_make_one(decided_request, settings, tmp_path):
    settings.AUDIT_SIGNING_KEY = None
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CommandError, match="AUDIT_SIGNING_KEY is not set.*openssl genpkey"):
        call_command("export_audit", "--out", str(out / "out.zip"))
    assert list(out.iterdir()) == []


def test_a_chain_rewritten_in_the_database_alone_is_signed_as_broken_and_fails_offline(
    decided_request, open_request, public_key, tmp_path, capsys
):
    """Someone with write access to the database, not the audit key, rewrites a decision and
    recomputes every later hash: the hashes verify offline, the MACs would not, and only the
    server can check those. The export checks them and signs its finding."""
    from tests.approvals.services.test_audit import _rewrite_and_rehash

    decided = next(e.seq for e in decided_request.audit_events.all() if e.event == "task.decided")
    _rewrite_and_rehash(decided_request, decided, {"decision": "REJECT"}, strip_mac=False)
    err = io.StringIO()
    out = tmp_path / "rewritten.zip"
    call_command("export_audit", "--out", str(out), stdout=io.StringIO(), stderr=err)
    assert "1 request(s) have an audit chain that does not verify" in err.getvalue()
    assert f"instance {decided_request.pk}: event #{decided}" in err.getvalue()
    entries = [json.loads(line) for line in members(out)["manifest.jsonl"].splitlines()[1:]]
    verdicts = {e["request"]: e["chain_check"] for e in entries}
    assert verdicts[open_request.pk] == "verified"
    assert verdicts[decided_request.pk].startswith(f"event #{decided}: MAC does not match")
    status, printed = verify(out, public_key, capsys)
    assert status == 1
    assert printed.startswith(
        "FAILED: manifest.jsonl line 2, field chain_check: the server found this chain broken "
        f"when it exported it: event #{decided}: MAC does not match"
    )
