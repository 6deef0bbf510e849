"""Sensitive form fields: envelope encryption in a request's context, and the one mask.

A form field marked `x-sensitive: true` in a definition's JSON Schema form is kept encrypted
wherever the request is stored, yet reads as plaintext in memory, so guards, `assign` and the
pages of those who may see the request work unchanged:

- each request that has a sensitive value gets its own random 256-bit data key;
- each sensitive value is stored in `context` as `{"$enc": "<base64 nonce + AES-256-GCM
  ciphertext>"}`, its field name bound in as associated data (a ciphertext copied to another
  field, or another request, does not open);
- the data key is stored beside the context (`WorkflowInstance.data_key`), wrapped with a
  key-encryption key (KEK) from FIELD_ENCRYPTION_KEYS (RFC 3394 AES key wrap), together with
  the id of that KEK (`data_key_kek`), so rotating the KEK re-wraps the data keys and leaves
  the encrypted values as they are (`manage.py rotate_field_keys`).

Whatever leaves the system (notifications, Slack, Teams, e-mail, webhooks and outbox payloads,
the audit trail and so its signed export) goes through `masked`: a sensitive value is shown as
MASK, or, in the audit trail, as `{"$sha256": ...}`, the SHA-256 of its canonical JSON, so an
auditor holding the value can check it and nobody else learns it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from django.conf import settings

from approvals.audit_chain import canonical_json
from approvals.machine.config import sensitive_fields
from workflow_app.env import parse_field_keys

MASK = "••••••"
ENCRYPTED = "$enc"
HASHED = "$sha256"
NONCE_BYTES = 12
DATA_KEY_BYTES = 32


class FieldKeyError(Exception):
    """A sensitive value cannot be stored or read: no key-encryption key, a missing one, or
    data that does not open with the request's key. The message names what to do."""


@dataclass(frozen=True)
class Keyring:
    """FIELD_ENCRYPTION_KEYS, read: KEKs by id, and the current one (the first)."""

    current: str | None
    keys: Mapping[str, bytes]

    def kek(self, kek_id: str) -> bytes:
        try:
            return self.keys[kek_id]
        except KeyError:
            known = ", ".join(self.keys) or "none"
            raise FieldKeyError(
                f"a data key is wrapped with the key-encryption key '{kek_id}', which is not "
                f"in FIELD_ENCRYPTION_KEYS (configured: {known}); put it back (after the "
                "current key) and run `python manage.py rotate_field_keys` before removing it"
            ) from None


@functools.lru_cache(maxsize=4)
def _keyring(entries: tuple[str, ...]) -> Keyring:
    pairs = parse_field_keys(list(entries), "FIELD_ENCRYPTION_KEYS")
    return Keyring(pairs[0][0] if pairs else None, dict(pairs))


def keyring() -> Keyring:
    return _keyring(tuple(settings.FIELD_ENCRYPTION_KEYS or ()))


def names_of(definition: Any) -> frozenset[str]:
    """The sensitive fields of a definition version (its form's `x-sensitive` properties)."""
    return sensitive_fields(getattr(definition, "form_schema", None) or {})


# ----- data keys


def new_data_key() -> tuple[bytes, str, str]:
    """(data key, id of the KEK that wraps it, wrapped key as base64)."""
    ring = keyring()
    if ring.current is None:
        raise FieldKeyError(
            "this request has sensitive fields (x-sensitive in its form), but "
            "FIELD_ENCRYPTION_KEYS is not set, so they cannot be stored: set it to "
            "<id>:<32 random bytes in base64> (README, Sensitive fields)"
        )
    data_key = os.urandom(DATA_KEY_BYTES)
    return data_key, ring.current, wrap(data_key, ring.current)


def wrap(data_key: bytes, kek_id: str) -> str:
    return base64.b64encode(aes_key_wrap(keyring().kek(kek_id), data_key)).decode()


def unwrap(wrapped: str, kek_id: str) -> bytes:
    kek = keyring().kek(kek_id)
    try:
        return aes_key_unwrap(kek, base64.b64decode(wrapped))
    except (InvalidUnwrap, binascii.Error, ValueError):
        raise FieldKeyError(
            f"a data key does not unwrap with the key-encryption key '{kek_id}': the key "
            "configured under that id is not the one that wrapped it"
        ) from None


# ----- values in a context


def is_encrypted(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {ENCRYPTED}


def seal(context: Mapping[str, Any], names: Iterable[str], data_key: bytes) -> dict[str, Any]:
    """The context as stored: each sensitive field's value encrypted."""
    stored = dict(context)
    cipher = AESGCM(data_key)
    for name in names:
        if name in stored and not is_encrypted(stored[name]):
            nonce = os.urandom(NONCE_BYTES)
            plain = canonical_json(stored[name]).encode()
            sealed = cipher.encrypt(nonce, plain, name.encode())
            stored[name] = {ENCRYPTED: base64.b64encode(nonce + sealed).decode()}
    return stored


def has_encrypted(context: Any) -> bool:
    return isinstance(context, Mapping) and any(is_encrypted(v) for v in context.values())


def unseal(context: Mapping[str, Any], data_key: bytes) -> dict[str, Any]:
    """The context in memory: every encrypted value opened."""
    cipher = AESGCM(data_key)
    opened = dict(context)
    for name, value in context.items():
        if not is_encrypted(value):
            continue
        try:
            raw = base64.b64decode(value[ENCRYPTED])
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], name.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise FieldKeyError(
                f"the sensitive field '{name}' does not decrypt with its request's data key "
                "(edited in the database, or copied from another request)"
            ) from None
        opened[name] = json.loads(plain)
    return opened


# ----- the mask


def value_hash(value: Any) -> str:
    """SHA-256 (hex) of a value's canonical JSON: what the audit trail keeps of it."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def is_masked(value: Any) -> bool:
    if value == MASK:
        return True
    if isinstance(value, Mapping):
        return set(value) == {HASHED} or is_encrypted(value)
    if isinstance(value, list):
        return bool(value) and all(is_masked(v) or v is None for v in value)
    return False


def mask_value(value: Any, *, hashed: bool = False) -> Any:
    """One value masked; a list item by item (a change recorded as [old, new] stays a pair)."""
    if value is None or is_masked(value):
        return value
    if isinstance(value, list | tuple):
        return [mask_value(item, hashed=hashed) for item in value]
    return {HASHED: value_hash(value)} if hashed else MASK


def masked(data: Any, names: Iterable[str], *, hashed: bool = False) -> Any:
    """`data` with the value under every key named in `names`, at any depth, masked: MASK,
    or (`hashed`, the audit trail) `{"$sha256": ...}`. Nothing to mask: `data` itself."""
    names = frozenset(names)
    if not names:
        return data
    if isinstance(data, Mapping):
        return {
            key: mask_value(value, hashed=hashed)
            if key in names
            else masked(value, names, hashed=hashed)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [masked(item, names, hashed=hashed) for item in data]
    return data


def masked_for(definition: Any, data: Any, *, hashed: bool = False) -> Any:
    """`masked` with the sensitive fields of a definition version."""
    return masked(data, names_of(definition), hashed=hashed)
