"""The provider's state, `control.json` in its folder (PROVIDER_DIR), read on every request."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def control_file() -> Path:
    return Path(os.environ["PROVIDER_DIR"]) / "control.json"


def read() -> dict[str, Any]:
    return json.loads(control_file().read_text())


def person(username: str) -> dict[str, Any] | None:
    return read()["people"].get(username)
