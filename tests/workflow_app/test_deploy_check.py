"""With production-like variables, Django's deployment checklist has nothing to say."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.processes import child_env, manage


@pytest.mark.slow
def test_check_deploy_is_clean_in_production_mode(tmp_path: Path) -> None:
    env = child_env(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/signoff",
        REDIS_URL="redis://127.0.0.1:6379/0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="signoff.example.com",
        SITE_URL="https://signoff.example.com",
    )
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
