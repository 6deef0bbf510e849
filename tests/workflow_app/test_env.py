"""Bad configuration stops the process with a message that names the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.processes import child_env, manage
from workflow_app import env
from workflow_app.env import env_email


@pytest.mark.parametrize("value", ["maybe", "2", "enabled"])
def test_bool_rejects_anything_but_a_boolean(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DEBUG", value)
    with pytest.raises(ImproperlyConfigured, match=rf"DEBUG='{value}' is not a boolean"):
        env.env_bool("DEBUG", False)


@pytest.mark.parametrize(("value", "expected"), [("TRUE", True), ("off", False), ("  ", True)])
def test_bool_reads_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("DEBUG", value)
    assert env.env_bool("DEBUG", True) is expected


@pytest.mark.parametrize(
    "value",
    [
        "mysql://root@localhost/signoff",
        "not a url",
        "postgres://postgres@127.0.0.1:notaport/signoff",
        "postgres://postgres@127.0.0.1:5432",
    ],
)
def test_database_url_must_be_a_usable_url(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DATABASE_URL", value)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL="):
        env.env_database("DATABASE_URL", Path("unused.sqlite3"))


def test_database_url_for_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/signoff")
    config = env.env_database("DATABASE_URL", Path("unused.sqlite3"))
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["HOST"], config["PORT"]) == ("signoff", "127.0.0.1", 5432)


def test_postgres_connections_come_from_a_bounded_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under ASGI every request runs in a thread of its own: persistent connections (one per
    # thread) grow without bound, a pool per process does not.
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/signoff")
    config = env.env_database("DATABASE_URL", Path("unused.sqlite3"), pool_size=7, pool_timeout=3)
    assert config["CONN_MAX_AGE"] == 0
    assert config["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 7, "timeout": 3}
    # The statement options the transitions benchmark relies on travel with the pool.
    assert config["OPTIONS"]["server_side_binding"] is True
    assert config["OPTIONS"]["prepare_threshold"] == 5


def test_a_pool_size_of_zero_turns_the_pool_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """For an external pooler (PgBouncer): one connection per request, closed at its end."""
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/signoff")
    config = env.env_database("DATABASE_URL", Path("unused.sqlite3"), pool_size=0, pool_timeout=3)
    assert "pool" not in config["OPTIONS"]
    assert config["CONN_MAX_AGE"] == 0


def test_no_database_url_is_sqlite_in_wal_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = env.env_database("DATABASE_URL", Path("/srv/signoff.sqlite3"))
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == "/srv/signoff.sqlite3"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize("value", ["http://127.0.0.1:6379/0", "redis://", "redis://host:port/0"])
def test_redis_url_must_be_a_redis_url(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("REDIS_URL", value)
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL="):
        env.env_redis_url("REDIS_URL")


@pytest.mark.parametrize(
    ("name", "reader"),
    [
        ("SLA_SWEEP_SECONDS", lambda: env.env_int("SLA_SWEEP_SECONDS", 30, minimum=1)),
        ("SITE_URL", lambda: env.env_site_url("SITE_URL", "http://localhost:8000")),
        ("TIME_ZONE", lambda: env.env_time_zone("TIME_ZONE", "UTC")),
        ("DATABASE_POOL_SIZE", lambda: env.env_int("DATABASE_POOL_SIZE", 10)),
    ],
)
def test_other_readers_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, reader: object
) -> None:
    monkeypatch.setenv(name, "nonsense/0")
    with pytest.raises(ImproperlyConfigured, match=f"{name}="):
        reader()  # type: ignore[operator]


def test_secret_key_is_required_when_debug_is_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
        env.secret_key("SECRET_KEY", debug=False, keep_file=tmp_path / "secret_key")


def test_development_secret_key_is_generated_once_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    keep = tmp_path / "secret_key"
    first = env.secret_key("SECRET_KEY", debug=True, keep_file=keep)
    assert len(first) >= 50
    assert env.secret_key("SECRET_KEY", debug=True, keep_file=keep) == first
    assert keep.stat().st_mode & 0o077 == 0


def test_audit_chain_key_is_required_when_debug_is_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AUDIT_CHAIN_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="AUDIT_CHAIN_KEY must be set"):
        env.secret_key(
            "AUDIT_CHAIN_KEY", debug=False, keep_file=tmp_path / "audit_chain_key", min_length=32
        )


def test_a_short_audit_chain_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("AUDIT_CHAIN_KEY", "hunter2")
    with pytest.raises(ImproperlyConfigured, match="AUDIT_CHAIN_KEY is too short"):
        env.secret_key("AUDIT_CHAIN_KEY", debug=True, keep_file=tmp_path / "k", min_length=32)
    monkeypatch.setenv("AUDIT_CHAIN_PREVIOUS_KEYS", f"{'a' * 32},short")
    with pytest.raises(ImproperlyConfigured, match="AUDIT_CHAIN_PREVIOUS_KEYS holds a key"):
        env.env_keys("AUDIT_CHAIN_PREVIOUS_KEYS", min_length=32)


def test_processes_started_together_keep_one_generated_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import threading

    monkeypatch.delenv("AUDIT_CHAIN_KEY", raising=False)
    keep = tmp_path / "audit_chain_key"
    barrier = threading.Barrier(8)
    keys: list[str] = []

    def read() -> None:
        barrier.wait()
        keys.append(env.secret_key("AUDIT_CHAIN_KEY", debug=True, keep_file=keep, min_length=32))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and keys[0] == keep.read_text()
    assert keep.stat().st_mode & 0o077 == 0
    assert [path.name for path in tmp_path.iterdir()] == ["audit_chain_key"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL='mysql://root@localhost/x'"),
        ("AUDIT_CHAIN_KEY", "hunter2", "AUDIT_CHAIN_KEY is too short"),
    ],
)
def test_manage_py_refuses_to_start_with_a_bad_value(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    result = manage("check", env=child_env(tmp_path, **{variable: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


@pytest.mark.slow
def test_production_refuses_to_start_without_an_audit_chain_key(tmp_path: Path) -> None:
    production = child_env(
        tmp_path, DEBUG="false", SECRET_KEY="x" * 50, ALLOWED_HOSTS="x", AUDIT_CHAIN_KEY=None
    )
    result = manage("check", env=production)
    assert result.returncode != 0
    assert "AUDIT_CHAIN_KEY must be set when DEBUG is off" in result.stderr


# ----- EMAIL_URL


def test_email_url_unset_writes_files_under_var_mail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMAIL_URL", raising=False)
    assert env_email("EMAIL_URL", Path("/srv/var/mail")) == {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": "/srv/var/mail",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "smtp://mailer:s%40cret@mail.example.com:587",
            {
                "EMAIL_HOST": "mail.example.com",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "mailer",
                "EMAIL_HOST_PASSWORD": "s@cret",
                "EMAIL_USE_TLS": True,
                "EMAIL_USE_SSL": False,
                "EMAIL_TIMEOUT": 10,
            },
        ),
        (
            "smtp://relay.internal:25?tls=false&timeout=3",
            {"EMAIL_PORT": 25, "EMAIL_USE_TLS": False, "EMAIL_USE_SSL": False, "EMAIL_TIMEOUT": 3},
        ),
        ("smtps://mail.example.com", {"EMAIL_PORT": 465, "EMAIL_USE_SSL": True}),
        ("smtps://mail.example.com", {"EMAIL_USE_TLS": False}),
        ("smtp://mail.example.com", {"EMAIL_PORT": 587}),
    ],
)
def test_email_url_for_smtp(monkeypatch: pytest.MonkeyPatch, value: str, expected: dict) -> None:
    monkeypatch.setenv("EMAIL_URL", value)
    parsed = env_email("EMAIL_URL", Path("/unused"))
    assert parsed["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert {key: parsed[key] for key in expected} == expected


def test_email_url_console_and_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_URL", "console:")
    assert env_email("EMAIL_URL", Path("/unused")) == {
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"
    }
    monkeypatch.setenv("EMAIL_URL", "file:/tmp/outgoing")
    assert env_email("EMAIL_URL", Path("/unused"))["EMAIL_FILE_PATH"] == "/tmp/outgoing"
    monkeypatch.setenv("EMAIL_URL", "file:///tmp/outgoing")
    assert env_email("EMAIL_URL", Path("/unused"))["EMAIL_FILE_PATH"] == "/tmp/outgoing"
    monkeypatch.setenv("EMAIL_URL", "file:")
    assert env_email("EMAIL_URL", Path("/srv/mail"))["EMAIL_FILE_PATH"] == "/srv/mail"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("mailto:someone@example.com", "is not an e-mail URL"),
        ("smtp://", "names no host"),
        ("smtp://host:99999", "malformed port"),
        ("smtp://host?starttls=1", "unknown option starttls"),
        ("smtp://host?tls=maybe", "tls='maybe' is not a boolean"),
        ("smtp://host?timeout=soon", "timeout must be whole seconds"),
    ],
)
def test_a_bad_email_url_stops_with_its_name(
    monkeypatch: pytest.MonkeyPatch, value: str, words: str
) -> None:
    monkeypatch.setenv("EMAIL_URL", value)
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL") as caught:
        env_email("EMAIL_URL", Path("/unused"))
    assert words in str(caught.value)
