"""The documents a definition asks for: `meta.artifacts` on the start form (`form.meta`) or on
a step (`states.<name>.meta`), e.g.

    meta:
      artifacts:
        quote: {required: true, types: [application/pdf, "image/*"], max_mb: 20}

`required` on a step: the step cannot be approved until the request has a version of it; on the
start form: the request cannot be submitted without it. `types`: media types (a `type/*` pattern
too) the content must be; `max_mb`: a size limit below the site's ARTIFACT_MAX_MB.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RULE_KEYS = ("required", "types", "max_mb", "label")
# Artifact names: a word people type in the API and read on the page.
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_MEDIA_TYPE = re.compile(r"^(\*|[a-z0-9][a-z0-9.+-]*)/(\*|[a-z0-9][a-z0-9.+-]*)$")


@dataclass(frozen=True)
class ArtifactRule:
    name: str
    required: bool = False
    types: tuple[str, ...] = ()
    max_mb: float | None = None
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("-", " ").replace("_", " ")


def rules_of(meta: Any) -> dict[str, ArtifactRule]:
    """The rules of one `meta` (a state's or the form's); a part of the wrong shape is left
    out (validation says what is wrong with it)."""
    if not isinstance(meta, Mapping):
        return {}
    declared = meta.get("artifacts")
    if not isinstance(declared, Mapping):
        return {}
    rules = {}
    for name, rule in declared.items():
        if not isinstance(name, str) or not NAME.match(name):
            continue
        rule = rule if isinstance(rule, Mapping) else {}
        types = rule.get("types")
        max_mb = rule.get("max_mb")
        rules[name] = ArtifactRule(
            name=name,
            required=rule.get("required") is True,
            types=tuple(t for t in types if isinstance(t, str)) if isinstance(types, list) else (),
            max_mb=float(max_mb)
            if isinstance(max_mb, int | float) and not isinstance(max_mb, bool)
            else None,
            label=rule.get("label") if isinstance(rule.get("label"), str) else "",
        )
    return rules


def form_rules(form: Any) -> dict[str, ArtifactRule]:
    return rules_of(form.get("meta")) if isinstance(form, Mapping) else {}


def problems(value: Any, *, site_max_mb: float | None = None) -> list[tuple[str, str]]:
    """What is wrong with a `meta.artifacts` value, as (place below it, message)."""
    if not isinstance(value, Mapping):
        return [("", "expected a mapping of artifact names to their rules")]
    found: list[tuple[str, str]] = []
    for name, rule in value.items():
        if not isinstance(name, str) or not NAME.match(name):
            found.append(
                (
                    str(name),
                    "an artifact name is lower-case letters, digits, '-', '_' or '.', "
                    "starting with a letter or digit, at most 100 characters",
                )
            )
            continue
        if not isinstance(rule, Mapping):
            found.append((name, "expected a mapping (required, types, max_mb)"))
            continue
        for key in rule:
            if key not in RULE_KEYS:
                found.append((f"{name}.{key}", f"unknown key; use one of {', '.join(RULE_KEYS)}"))
        if "required" in rule and not isinstance(rule["required"], bool):
            found.append((f"{name}.required", "expected true or false"))
        if "label" in rule and not isinstance(rule["label"], str):
            found.append((f"{name}.label", "expected text"))
        if "types" in rule:
            types = rule["types"]
            if not isinstance(types, list) or not types:
                found.append((f"{name}.types", "expected a list of media types"))
            else:
                for index, item in enumerate(types):
                    if not isinstance(item, str) or not _MEDIA_TYPE.match(item):
                        found.append(
                            (
                                f"{name}.types[{index}]",
                                f"{item!r} is not a media type such as application/pdf or image/*",
                            )
                        )
        if "max_mb" in rule:
            max_mb = rule["max_mb"]
            if isinstance(max_mb, bool) or not isinstance(max_mb, int | float) or max_mb <= 0:
                found.append((f"{name}.max_mb", "expected a number of megabytes above 0"))
            elif site_max_mb is not None and max_mb > site_max_mb:
                found.append(
                    (
                        f"{name}.max_mb",
                        f"{max_mb} MB is above the site's limit of {site_max_mb:g} MB "
                        "(ARTIFACT_MAX_MB)",
                    )
                )
    return found
