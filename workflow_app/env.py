"""Typed readers for environment variables that fail loudly, naming the variable.

Settings are read once at start-up; a malformed value must stop the process with a message a
newcomer can act on rather than run with a silently different configuration.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; use one of: {', '.join(sorted(_TRUE | _FALSE))}"
    )


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}")
    return number


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}")
    return value.lower()


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_database(
    name: str, sqlite_path: Path, *, pool_size: int = 10, pool_timeout: int = 10
) -> dict[str, Any]:
    """The database from a URL, or a SQLite file tuned for several processes (WAL).

    PostgreSQL connections come from a pool of at most `pool_size` per process (psycopg_pool,
    through Django's OPTIONS["pool"]); a caller waits up to `pool_timeout` seconds for one.
    `pool_size=0`: no pool, a connection per request closed at its end (behind PgBouncer).
    """
    value = _raw(name)
    if value is None:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            "OPTIONS": {
                # Web, worker and beat write concurrently: WAL lets readers go on during a
                # write, IMMEDIATE takes the write lock at BEGIN so two writers queue on the
                # busy timeout instead of failing with "database is locked" mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    scheme = urlsplit(value).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a database URL; expected postgres://user@host:port/name "
            "or sqlite:///path"
        )
    try:
        # Never persistent connections: under ASGI each request runs in a thread of its own,
        # and a connection kept per thread grows with the load until PostgreSQL refuses more
        # ("too many clients"). Django's pool rejects CONN_MAX_AGE other than 0.
        config = dj_database_url.parse(value, conn_max_age=0, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a valid database URL: {exc}") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={value!r} names no database (add /dbname)")
    if scheme != "sqlite":
        # Our queries are short and indexed; PostgreSQL's JIT compiles plans it wrongly thinks
        # large (a filtered inbox count) and adds ~100 ms to each (bench/inbox.py).
        options = config.setdefault("OPTIONS", {})
        # Prepared statements, below, are still planned for the values of each call: after
        # five calls PostgreSQL would otherwise settle on one generic plan, blind to how many
        # rows a value matches, and the inbox filtered by text went from 12 ms to 150 ms on the
        # eleventh request of a connection (bench/inbox.py).
        extra = "-c jit=off -c plan_cache_mode=force_custom_plan"
        options["options"] = f"{options.get('options', '')} {extra}".strip()
        # Parameters bound by the server, and statements prepared once a connection has run
        # them five times (psycopg's threshold; Django turns it off unless asked): every
        # transition's statements are then parsed once per connection, not on every call
        # (bench/transitions.py).
        # psycopg's pool keeps each connection's session (no reset when it is given back), so
        # prepared statements live as long as the pooled connection does.
        options["server_side_binding"] = True
        options["prepare_threshold"] = 5
        if pool_size:
            # One connection kept open; the rest opened under load and closed after ten idle
            # minutes (psycopg_pool's max_idle).
            options["pool"] = {"min_size": 1, "max_size": pool_size, "timeout": pool_timeout}
    return config


def env_redis_url(name: str) -> str | None:
    value = _raw(name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a Redis URL; expected redis://host:port/db"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} has a malformed port") from None
    return value


def env_site_url(name: str, default: str) -> str:
    value = _raw(name) or default
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not an absolute http(s) URL such as https://signoff.example.com"
        )
    return value.rstrip("/")


def env_time_zone(name: str, default: str) -> str:
    import zoneinfo

    value = _raw(name) or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(f"{name}={value!r} is not a known time zone") from None
    return value


def secret_key(name: str, *, debug: bool, keep_file: Path, min_length: int = 0) -> str:
    """The configured key; in development, one generated once and kept under var/."""
    value = _raw(name)
    if value is None:
        if not debug:
            raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")
        value = _kept_key(keep_file)
    if len(value) < min_length:
        raise ImproperlyConfigured(
            f"{name} is too short: use at least {min_length} random characters, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value


def _kept_key(keep_file: Path, make: Callable[[], str] = lambda: secrets.token_urlsafe(50)) -> str:
    if keep_file.exists():
        return keep_file.read_text().strip()
    keep_file.parent.mkdir(parents=True, exist_ok=True)
    # Processes started together (web, worker, beat) must agree on one key: written aside,
    # then linked into place, so the first one wins and the others read what it wrote.
    draft = keep_file.with_name(f".{keep_file.name}.{secrets.token_hex(8)}")
    with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(make())
    try:
        os.link(draft, keep_file)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return keep_file.read_text().strip()


SIGNING_KEY_HELP = (
    "an Ed25519 private key in PEM, or the path of a file holding one (make one with "
    "`openssl genpkey -algorithm ed25519 -out audit_signing_key.pem`)"
)


def signing_key(name: str, *, debug: bool, keep_file: Path) -> str | None:
    """An Ed25519 private key as PEM text: given as PEM, or as the path of a PEM file; in
    development, one generated once and kept under var/. Unset with DEBUG off: None, and what
    needs it (the signed audit export) says so."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    value = _raw(name)
    if value is None:
        if not debug:
            return None

        def generate() -> str:
            return (
                Ed25519PrivateKey.generate()
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                .decode()
            )

        return _kept_key(keep_file, generate) + "\n"
    if value.startswith("-----BEGIN"):
        # An environment file may carry the PEM's line breaks as \n.
        pem = value.replace("\\n", "\n")
        where = f"{name} (PEM given in the variable)"
    else:
        path = Path(value).expanduser()
        try:
            pem = path.read_text()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}={value!r} is neither a PEM key nor a file that can be read "
                f"({exc.strerror or exc}); give {SIGNING_KEY_HELP}"
            ) from None
        where = f"{name} (file {path})"
    pem = pem.strip() + "\n"
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            f"{where} is not an unencrypted PEM private key ({exc}); give {SIGNING_KEY_HELP}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(
            f"{where} is a {type(key).__name__.removeprefix('_')}, not an Ed25519 key; "
            f"give {SIGNING_KEY_HELP}"
        )
    return pem


FIELD_KEY_HELP = (
    "a comma-separated list of <id>:<key>, the current key first, each key 32 random bytes "
    "in base64 (make one with `python3 -c 'import base64, os; "
    "print(base64.b64encode(os.urandom(32)).decode())'`) and each id letters, digits, '.', "
    "'_' or '-', such as 2026-12:"
)
_FIELD_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")


def parse_field_keys(entries: list[str], name: str) -> list[tuple[str, bytes]]:
    """Key-encryption keys for sensitive fields as (id, 32-byte key), the current one first;
    a malformed entry is refused, naming its place but never the key."""
    keys: list[tuple[str, bytes]] = []
    for place, entry in enumerate(entries, start=1):
        kek_id, colon, text = str(entry).strip().partition(":")
        where = f"{name}: entry {place}"
        if not colon or not _FIELD_KEY_ID.fullmatch(kek_id):
            raise ImproperlyConfigured(
                f"{where} is not <id>:<key> with an id of letters, digits, '.', '_' or '-'; "
                f"give {FIELD_KEY_HELP}"
            )
        try:
            key = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except binascii.Error:
            raise ImproperlyConfigured(
                f"{where} (id '{kek_id}') is not base64; give {FIELD_KEY_HELP}"
            ) from None
        if len(key) != 32:
            raise ImproperlyConfigured(
                f"{where} (id '{kek_id}') is {len(key)} bytes, not 32 (AES-256); "
                f"give {FIELD_KEY_HELP}"
            )
        if any(kek_id == known for known, _ in keys):
            raise ImproperlyConfigured(f"{where}: the id '{kek_id}' is given twice")
        keys.append((kek_id, key))
    return keys


def field_encryption_keys(name: str, *, debug: bool, keep_file: Path) -> list[str]:
    """The key-encryption keys of sensitive fields as `<id>:<base64 key>`, checked at start;
    in development, one generated once and kept under var/. Unset with DEBUG off: none, and
    storing a sensitive field says so."""
    entries = env_list(name, [])
    if not entries and debug:

        def generate() -> str:
            return f"local:{base64.b64encode(os.urandom(32)).decode()}"

        entries = [_kept_key(keep_file, generate)]
    parse_field_keys(entries, name)
    return entries


def env_keys(name: str, *, min_length: int) -> list[str]:
    """Comma-separated keys, each as long as a key must be."""
    keys = env_list(name, [])
    if any(len(key) < min_length for key in keys):
        raise ImproperlyConfigured(f"{name} holds a key shorter than {min_length} characters")
    return keys


def env_rate(name: str, default: str) -> str:
    """A throttle rate such as "120/minute" (DRF's format: count / second|minute|hour|day)."""
    value = _raw(name)
    if value is None:
        return default
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in _RATE_PERIODS:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate such as 120/minute (periods: second, minute, "
            "hour, day)"
        )
    return value


_RATE_PERIODS = {"s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"}


EMAIL_SCHEMES = "smtp://user:password@host:587, smtps://host:465, console: or file:/path"


def env_email(name: str, default_dir: Path) -> dict[str, Any]:
    """Django's e-mail settings from one URL: smtp:// (STARTTLS, required; ?tls=false for a
    local relay that offers none), smtps:// (TLS from the first byte), console: (printed by
    the process) or file:/path (a file per process and connection, Django's file backend).
    Unset: file: into `default_dir`, where a newcomer can read them. `?timeout=` in seconds."""
    value = _raw(name)
    if value is None:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(default_dir),
        }
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme == "file":
        path = unquote(parts.path) or str(default_dir)
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": path,
        }
    if scheme not in {"smtp", "smtps"}:
        raise ImproperlyConfigured(f"{name}={value!r} is not an e-mail URL; use {EMAIL_SCHEMES}")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} has a malformed port") from None
    if not parts.hostname:
        raise ImproperlyConfigured(f"{name}={value!r} names no host; use {EMAIL_SCHEMES}")
    query = dict(parse_qsl(parts.query))
    unknown = set(query) - {"tls", "timeout"}
    if unknown:
        raise ImproperlyConfigured(
            f"{name}={value!r}: unknown option {', '.join(sorted(unknown))} (tls, timeout)"
        )
    tls = query.get("tls", "true").lower()
    if tls not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name}={value!r}: tls={tls!r} is not a boolean")
    try:
        timeout = int(query.get("timeout", "10"))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: timeout must be whole seconds") from None
    ssl = scheme == "smtps"
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port or (465 if ssl else 587),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_SSL": ssl,
        "EMAIL_USE_TLS": not ssl and tls in _TRUE,
        "EMAIL_TIMEOUT": timeout,
    }


def env_storage(
    name: str, media_root: Path, *, endpoint_url: str | None, region: str | None
) -> dict[str, Any]:
    """Django's default storage: the filesystem under `media_root` when unset, else an
    S3-compatible bucket named by `s3://bucket[/prefix]`."""
    value = _raw(name)
    if value is None:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media_root)},
        }
    parts = urlsplit(value)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a storage URL; use s3://bucket or s3://bucket/prefix"
        )
    options: dict[str, Any] = {
        "bucket_name": parts.netloc,
        "location": parts.path.strip("/"),
        "file_overwrite": False,
        "default_acl": None,
        "querystring_auth": True,
    }
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if region:
        options["region_name"] = region
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
