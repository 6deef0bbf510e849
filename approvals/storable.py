"""What the database can store, checked before it is asked to.

PostgreSQL refuses text with NUL characters (in text columns and in jsonb) and psycopg cannot
encode a lone surrogate (``"\\ud800"``: half of a UTF-16 pair, which JSON's ``\\u`` escapes and
some declared charsets can produce, but which is not Unicode text); jsonb holds no infinite or
NaN numbers. Either would be an exception at INSERT time, a 500, so input is refused with a
message first. SQLite stores all of them, which is why the checks do not rely on the database.
"""

from __future__ import annotations

import math
import re
from typing import Any

NUL_MESSAGE = "Text may not contain NUL characters."
SURROGATE_MESSAGE = (
    "Text may not contain surrogate characters (U+D800 to U+DFFF), which are not Unicode."
)
# Deep enough for any form data; past it, walking and storing the value recurses too far.
MAX_JSON_DEPTH = 32

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def text_problem(text: str) -> str | None:
    """Why this text cannot be stored, or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    if has_surrogates(text):
        return SURROGATE_MESSAGE
    return None


def json_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """Why a JSON value cannot be stored, or None: (where, message). Where is a path of keys
    and [indexes] inside the value (``"items[2].note"``), empty for the value itself."""
    found = _find(value, 0, max_depth)
    if found is None:
        return None
    path, message = found
    path = path.lstrip(".")
    return (path if len(path) <= 80 else path[:77] + "..."), message


def _find(value: Any, depth: int, max_depth: int) -> tuple[str, str] | None:
    """(path, message) of the first problem; paths are built as ".key" and "[index]"."""
    if depth > max_depth:
        return "", f"Nested deeper than {max_depth} levels."
    if isinstance(value, str):
        problem = text_problem(value)
        return ("", problem) if problem else None
    if isinstance(value, float) and not math.isfinite(value):
        return "", "Numbers must be finite."
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key) if isinstance(key, str) else None
            if problem:
                return "", f"A key is not storable: {problem[0].lower()}{problem[1:]}"
            found = _find(item, depth + 1, max_depth)
            if found:
                return f".{_shown(key)}{found[0]}", found[1]
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find(item, depth + 1, max_depth)
            if found:
                return f"[{index}]{found[0]}", found[1]
    return None


def _shown(key: Any) -> str:
    text = str(key)
    return text if len(text) <= 40 else text[:37] + "..."
