"""The Ed25519 key that signs audit bundles (setting AUDIT_SIGNING_KEY, workflow_app/env.py)."""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from approvals.audit_chain import key_id

MISSING = (
    "AUDIT_SIGNING_KEY is not set, so no audit bundle can be signed: set it to an Ed25519 "
    "private key in PEM, or the path of a file holding one (make one with "
    "`openssl genpkey -algorithm ed25519 -out audit_signing_key.pem`)"
)


class SigningKeyMissing(Exception):
    def __init__(self) -> None:
        super().__init__(MISSING)


@functools.lru_cache(maxsize=4)
def _load(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)  # checked when the settings were read
    return key


def private_key() -> Ed25519PrivateKey:
    pem = settings.AUDIT_SIGNING_KEY
    if not pem:
        raise SigningKeyMissing()
    return _load(pem)


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem() -> str:
    return (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def signing_key_id() -> str:
    return key_id(raw_public_key(private_key()))
