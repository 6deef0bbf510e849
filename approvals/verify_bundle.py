"""Verify a signed audit bundle offline: no Django, no database, only the standard library and
`cryptography`.

    python -m approvals.verify_bundle BUNDLE.zip --public-key audit_public_key.pem

Checks, in this order, and stops at the first problem, printed with its place (file, line,
field), with exit status 1:

1. the bundle is a whole zip archive with its signature and manifest;
2. the Ed25519 signature in manifest.sig verifies with the given public key, and the manifest's
   SHA-256 is the one signed;
3. for every request listed in the manifest: each event's hash recomputed from its fields (the
   same arithmetic as the server's, approvals/audit_chain.py), every link to the event before it,
   the sequence without gaps, and the chain's end against the head the manifest records; and
   the server's own check of the chain's MACs when it exported (`chain_check`: the MACs need
   the server's audit key, which a verifier never has);
4. each document version's SHA-256 against the one its audit event recorded, and the included
   files' bytes against it;
5. every file's SHA-256 against the manifest's, the definitions' too, the totals, and that the
   archive holds nothing the manifest does not list.

All good: "OK: N requests, M events", exit status 0. Memory stays flat in the bundle's size:
files are read as streams, line by line.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import sys
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from approvals.audit_chain import (
    ARTIFACT_EVENT,
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    HASHED_FIELDS,
    MANIFEST,
    SIGNATURE,
    artifacts_path,
    body_hash,
    events_path,
    key_id,
    signed_statement,
)

CHUNK = 1024 * 1024


class Problem(Exception):
    def __init__(self, place: str, message: str) -> None:
        super().__init__(f"{place}: {message}")
        self.place = place
        self.message = message


def load_public_key(value: str) -> Ed25519PublicKey:
    """The key as PEM text, or the path of a PEM file."""
    if value.lstrip().startswith("-----BEGIN"):
        pem, where = value.encode(), "--public-key"
    else:
        try:
            pem, where = Path(value).read_bytes(), value
        except OSError as exc:
            raise Problem(value, f"cannot read the public key ({exc.strerror or exc})") from None
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise Problem(where, "not a public key in PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise Problem(where, f"a {type(key).__name__.removeprefix('_')}, not an Ed25519 key")
    return key


class Bundle:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise Problem(path, "no such file") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise Problem(
                path, f"not a zip archive, or truncated: its directory cannot be read ({exc})"
            ) from None
        self.names = self.zip.namelist()

    def has(self, name: str) -> bool:
        try:
            self.zip.getinfo(name)
        except KeyError:
            return False
        return True

    @contextmanager
    def open(self, name: str, *, listed_in: str) -> Iterator[IO[bytes]]:
        if not self.has(name):
            raise Problem(name, f"missing from the bundle (listed in {listed_in})")
        try:
            with self.zip.open(name) as handle:
                yield handle
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise Problem(name, f"damaged in the archive ({exc})") from None

    def sha256(self, name: str, *, listed_in: str) -> str:
        digest = hashlib.sha256()
        with self.open(name, listed_in=listed_in) as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()


def _json(raw: bytes, place: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(place, f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Problem(place, "not a JSON object")
    return value


def _field(record: dict[str, Any], name: str, place: str, kind: type | tuple[type, ...]) -> Any:
    if name not in record:
        raise Problem(f"{place}, field {name}", "missing")
    value = record[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Problem(f"{place}, field {name}", f"has the wrong type ({type(value).__name__})")
    return value


def check_signature(bundle: Bundle, public_key: Ed25519PublicKey) -> dict[str, Any]:
    with bundle.open(SIGNATURE, listed_in="every bundle") as handle:
        signature = _json(handle.read(), SIGNATURE)
    signer = _field(signature, "key_id", SIGNATURE, str)
    digest = _field(signature, "manifest_sha256", SIGNATURE, str)
    encoded = _field(signature, "signature", SIGNATURE, str)
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(f"{SIGNATURE}, field signature", "not base64") from None
    given = key_id(
        public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    try:
        public_key.verify(raw, signed_statement(manifest_sha256=digest, signing_key_id=signer))
    except InvalidSignature:
        if signer != given:
            raise Problem(
                SIGNATURE,
                f"the bundle says it was signed by key {signer}, and the signature does not "
                f"verify with the public key given (key {given}): wrong public key, or the "
                "signature was edited",
            ) from None
        raise Problem(
            f"{SIGNATURE}, field signature",
            f"does not verify with the public key (key {given}): the signature, the signed "
            "digest or the key id was edited",
        ) from None
    actual = bundle.sha256(MANIFEST, listed_in=SIGNATURE)
    if actual != digest:
        raise Problem(
            MANIFEST,
            f"its SHA-256 is {actual[:16]}…, not the {digest[:16]}… that {SIGNATURE} signs: "
            "the manifest was edited after it was signed",
        )
    return signature


class Verifier:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.requests = 0
        self.events = 0
        self.claimed = 2  # the manifest and its signature
        self.files_included = False

    def run(self, signature: dict[str, Any]) -> tuple[int, int]:
        with self.bundle.open(MANIFEST, listed_in=SIGNATURE) as raw:
            lines = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            header = self._header(next(lines, ""), signature)
            last = 0
            for number, line in enumerate(lines, start=2):
                place = f"{MANIFEST} line {number}"
                entry = _json(line.encode(), place)
                request = _field(entry, "request", place, int)
                if request <= last:
                    raise Problem(f"{place}, field request", f"{request} is out of order")
                last = request
                self._request(entry, request, place)
        self._totals(header)
        return self.requests, self.events

    def _header(self, line: str, signature: dict[str, Any]) -> dict[str, Any]:
        place = f"{MANIFEST} line 1"
        header = _json(line.encode(), place)
        if header.get("format") != BUNDLE_FORMAT:
            raise Problem(f"{place}, field format", f"is not {BUNDLE_FORMAT!r}")
        if header.get("version") != BUNDLE_VERSION:
            raise Problem(
                f"{place}, field version",
                f"is {header.get('version')!r}; this verifier reads version {BUNDLE_VERSION}",
            )
        if header.get("key_id") != signature["key_id"]:
            raise Problem(f"{place}, field key_id", f"differs from the one in {SIGNATURE}")
        scope = _field(header, "scope", place, dict)
        self.files_included = bool(scope.get("files_included"))
        for name in ("requests", "events", "files"):
            _field(header, name, place, int)
        _field(header, "definitions", place, list)
        return header

    def _request(self, entry: dict[str, Any], request: int, place: str) -> None:
        path = _field(entry, "events_file", place, str)
        if path != events_path(request):
            raise Problem(f"{place}, field events_file", f"is not {events_path(request)}")
        head_seq = _field(entry, "head_seq", place, int)
        head_hash = _field(entry, "head_hash", place, str)
        count = _field(entry, "events", place, int)
        digest = hashlib.sha256()
        recorded: dict[int, dict[str, Any]] = {}
        previous, seq = "", 0
        with self.bundle.open(path, listed_in=place) as handle:
            for number, raw in enumerate(handle, start=1):
                digest.update(raw)
                here = f"{path} line {number}"
                event = _json(raw, here)
                for name in (*HASHED_FIELDS, "hash"):
                    if name not in event:
                        raise Problem(f"{here}, field {name}", "missing")
                seq += 1
                if event["instance"] != request:
                    raise Problem(
                        f"{here}, field instance", f"is {event['instance']!r}, not {request}"
                    )
                if event["seq"] != seq:
                    raise Problem(
                        f"{here}, field seq",
                        f"is {event['seq']!r} where #{seq} comes next: an event was removed, "
                        "added or moved",
                    )
                if event["prev"] != previous:
                    raise Problem(
                        f"{here}, field prev",
                        "does not match the hash of the event before it"
                        + (f" (line {number - 1})" if number > 1 else " (the first has none)"),
                    )
                if body_hash(event) != event["hash"]:
                    raise Problem(
                        f"{here}, field hash",
                        f"does not match the content of event #{seq}: one of its fields "
                        "(or its hash) was edited",
                    )
                if event["event"] == ARTIFACT_EVENT and isinstance(event["data"], dict):
                    recorded[seq] = event["data"]
                previous = event["hash"]
        if seq != head_seq or previous != head_hash:
            raise Problem(
                path,
                f"the chain ends at #{seq} ({previous[:16] or 'empty'}…), but {place} records "
                f"its head as #{head_seq} ({head_hash[:16]}…): events were removed or added",
            )
        if count != seq:
            raise Problem(f"{place}, field events", f"is {count}; {path} holds {seq}")
        if digest.hexdigest() != _field(entry, "events_sha256", place, str):
            raise Problem(
                path,
                f"its SHA-256 differs from the one {place} records: the file was changed "
                "outside the hashed fields (a MAC, the spacing)",
            )
        check = _field(entry, "chain_check", place, str)
        if not check.startswith("verified"):
            # The MACs need the server's key, which never leaves it: the server checked them
            # when it exported, and signed what it found.
            raise Problem(
                f"{place}, field chain_check",
                f"the server found this chain broken when it exported it: {check}",
            )
        self._artifacts(entry, request, place, recorded)
        definition = _field(entry, "definition_file", place, str)
        if not self.bundle.has(definition):
            raise Problem(definition, f"missing from the bundle (named in {place})")
        self.claimed += 1
        self.requests += 1
        self.events += seq

    def _artifacts(
        self, entry: dict[str, Any], request: int, place: str, recorded: dict[int, dict[str, Any]]
    ) -> None:
        path = entry.get("artifacts_file")
        if path is None:
            return
        if path != artifacts_path(request):
            raise Problem(f"{place}, field artifacts_file", f"is not {artifacts_path(request)}")
        digest = hashlib.sha256()
        count = 0
        with self.bundle.open(path, listed_in=place) as handle:
            for number, raw in enumerate(handle, start=1):
                digest.update(raw)
                count += 1
                here = f"{path} line {number}"
                version = _json(raw, here)
                name = _field(version, "name", here, str)
                number_ = _field(version, "version", here, int)
                sha256 = _field(version, "sha256", here, str)
                seq = _field(version, "audit_seq", here, int)
                event = recorded.get(seq)
                if event is None or event.get("name") != name or event.get("version") != number_:
                    raise Problem(
                        f"{here}, field audit_seq",
                        f"event #{seq} of the chain does not record {name} v{number_}",
                    )
                if event.get("sha256") != sha256:
                    raise Problem(
                        f"{here}, field sha256",
                        f"is {sha256[:16]}…, but the audit chain recorded "
                        f"{str(event.get('sha256'))[:16]}… for {name} v{number_} (event #{seq})",
                    )
                stored = version.get("file")
                if stored is None:
                    if self.files_included:
                        raise Problem(f"{here}, field file", "missing in a bundle with files")
                    continue
                actual = self.bundle.sha256(stored, listed_in=here)
                if actual != sha256:
                    raise Problem(
                        stored,
                        f"its bytes hash to {actual[:16]}…, not to the {sha256[:16]}… the audit "
                        f"chain recorded for {name} v{number_}",
                    )
                self.claimed += 1
        if digest.hexdigest() != entry.get("artifacts_sha256"):
            raise Problem(path, f"its SHA-256 differs from the one {place} records")
        if count != entry.get("artifacts"):
            raise Problem(
                f"{place}, field artifacts", f"is {entry.get('artifacts')!r}; {path} lists {count}"
            )
        self.claimed += 1

    def _totals(self, header: dict[str, Any]) -> None:
        place = f"{MANIFEST} line 1"
        for definition in header["definitions"]:
            if not isinstance(definition, dict):
                raise Problem(f"{place}, field definitions", "holds something not an object")
            path = _field(definition, "file", f"{place}, definitions", str)
            if self.bundle.sha256(path, listed_in=place) != definition.get("sha256"):
                raise Problem(path, f"its SHA-256 differs from the one {place} records")
            self.claimed += 1
        if header["requests"] != self.requests:
            raise Problem(
                f"{place}, field requests",
                f"is {header['requests']}; the manifest lists {self.requests}",
            )
        if header["events"] != self.events:
            raise Problem(
                f"{place}, field events", f"is {header['events']}; the files hold {self.events}"
            )
        if len(self.bundle.names) != self.claimed:
            extra = self._unlisted(header)
            raise Problem(extra, "in the archive but not listed in the manifest")

    def _unlisted(self, header: dict[str, Any]) -> str:
        # Only on failure: a second pass that holds every listed name.
        listed = {MANIFEST, SIGNATURE, *(d["file"] for d in header["definitions"])}
        with self.bundle.open(MANIFEST, listed_in=SIGNATURE) as raw:
            for line in list(io.TextIOWrapper(raw, encoding="utf-8"))[1:]:
                entry = json.loads(line)
                listed.add(entry["events_file"])
                if entry.get("artifacts_file"):
                    listed.add(entry["artifacts_file"])
                    with self.bundle.open(entry["artifacts_file"], listed_in=MANIFEST) as handle:
                        listed.update(json.loads(r).get("file") for r in handle)
        seen: set[str] = set()
        for name in self.bundle.names:
            if name not in listed or name in seen:
                return name
            seen.add(name)
        return self.bundle.path


def verify(path: str, public_key: Ed25519PublicKey) -> tuple[int, int]:
    """(requests, events) of a bundle that verifies; raises Problem at the first that fails."""
    bundle = Bundle(path)
    with bundle.zip:
        signature = check_signature(bundle, public_key)
        return Verifier(bundle).run(signature)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m approvals.verify_bundle",
        description="Verify a signed Signoff audit bundle offline.",
    )
    parser.add_argument("bundle", help="the .zip written by export_audit or the auditor's page")
    parser.add_argument(
        "--public-key",
        required=True,
        help="the signer's Ed25519 public key: a PEM file (from `manage.py audit_public_key` or "
        "GET /audit/public-key), or the PEM text itself",
    )
    args = parser.parse_args(argv)
    try:
        requests, events = verify(args.bundle, load_public_key(args.public_key))
    except Problem as problem:
        print(f"FAILED: {problem}")
        return 1
    print(f"OK: {requests} requests, {events} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
