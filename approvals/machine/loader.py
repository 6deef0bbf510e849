"""Reading and writing definition files (YAML, or JSON, which YAML 1.2 contains).

PyYAML speaks YAML 1.1, where ``on``, ``off``, ``yes`` and ``no`` are booleans: XState's
``on:`` key would load as ``True``, and an event named ``NO`` would vanish. It also turns
``2025-01-31`` into a date (not JSON), ``010`` into 8 and ``1:30`` into 90. So the loader
here resolves plain scalars by the YAML 1.2 core schema instead (only ``true``/``false``
are booleans; numbers are decimal, ``0o`` octal or ``0x`` hex; everything else is text),
refuses duplicate keys instead of silently keeping the last one, and refuses tags that
have no JSON equivalent (``!!binary``, ``!!set``, ``!!timestamp``...).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode

__all__ = ["DefinitionError", "dump_document", "load_document", "nesting_problem"]

MAX_DOCUMENT_CHARS = 1_000_000
# Aliases share one object; expanding them (into JSON, into rows) multiplies it. This caps
# the expanded size, which is what a "billion laughs" document attacks.
MAX_EXPANDED_NODES = 200_000
# Mappings and lists inside each other: a definition needs a dozen levels or so (states in
# regions in parallel states, a form's nested objects). Past this, the readers, the checks
# and the database's JSON would recurse as deep as the document goes.
MAX_DEPTH = 64


class DefinitionError(Exception):
    """A definition that cannot be used; ``errors`` names every problem found."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))

    def __str__(self) -> str:
        return "\n".join(self.errors)


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_DECIMAL_INT = re.compile(r"[-+]?[0-9]+")


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                    key_node, ScalarNode
                ):
                    continue
                key = self.construct_object(key_node)
                if isinstance(key, bool) or key is None or isinstance(key, float):
                    raise ConstructorError(
                        None,
                        None,
                        f"a key must be text or a whole number, not {key_node.value!r}"
                        + (" (quote it)" if isinstance(key, bool) or key is None else ""),
                        key_node.start_mark,
                    )
                if key in seen:
                    raise ConstructorError(
                        "while reading a mapping",
                        seen[key],
                        f"duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: _Loader, node: ScalarNode) -> int:
    text = loader.construct_scalar(node)
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits, 10)


def _construct_float(loader: _Loader, node: ScalarNode) -> float:
    value = float(loader.construct_scalar(node))
    if not math.isfinite(value):
        raise ConstructorError(None, None, "number out of range", node.start_mark)
    return value


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$"),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
_Loader.yaml_constructors = {
    tag: constructor
    for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
    if tag
    not in {
        "tag:yaml.org,2002:binary",
        "tag:yaml.org,2002:timestamp",
        "tag:yaml.org,2002:omap",
        "tag:yaml.org,2002:pairs",
        "tag:yaml.org,2002:set",
    }
}
_Loader.add_constructor(_INT, _construct_int)
_Loader.add_constructor(_FLOAT, _construct_float)


def _yaml_message(filename: str, error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        if error.problem and error.context and error.context_mark is not None:
            problem += f" ({error.context} at line {error.context_mark.line + 1})"
        if mark is not None:
            return f"{filename}: line {mark.line + 1}, column {mark.column + 1}: {problem}"
        return f"{filename}: {problem}"
    return f"{filename}: {error}"


class _DuplicateJSONKey(ValueError):
    pass


class _TooDeep(DefinitionError):
    """Deeper than the parser can follow: no other reader would do better."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateJSONKey(key)
        result[key] = value
    return result


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _load_json(text: str, filename: str) -> Any:
    try:
        return json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_constant=_json_constant,
            parse_float=_json_float,
        )
    except json.JSONDecodeError as error:
        raise DefinitionError(
            f"{filename}: line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise _TooDeep(f"{filename}: the document is nested too deeply") from None
    except _DuplicateJSONKey as error:
        # The YAML reader knows where the duplicate is; JSON's hook does not.
        _load_yaml(text, filename)
        raise DefinitionError(f"{filename}: duplicate key {error.args[0]!r}") from None
    except ValueError as error:
        raise DefinitionError(f"{filename}: {error}") from None


def _load_yaml(text: str, filename: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader derives from SafeLoader
    except yaml.YAMLError as error:
        raise DefinitionError(_yaml_message(filename, error)) from None
    except RecursionError:
        raise DefinitionError(f"{filename}: the document is nested too deeply") from None


def _detach(value: Any, budget: list[int], filename: str) -> Any:
    # A fresh tree per alias use: later edits of one place must not show up in another,
    # and the budget stops exponential alias expansion before it eats the memory.
    budget[0] -= 1
    if budget[0] < 0:
        raise DefinitionError(f"{filename}: the document expands to too many values")
    if isinstance(value, dict):
        return {key: _detach(item, budget, filename) for key, item in value.items()}
    if isinstance(value, list):
        return [_detach(item, budget, filename) for item in value]
    return value


def load_document(text: str, *, filename: str = "<definition>") -> dict[str, Any]:
    """Parse a definition file (YAML or JSON) into plain dicts, lists and scalars.

    Raises DefinitionError with ``"{filename}: line L, column C: problem"`` for text that
    does not parse, and when the top level is not a mapping. It does not validate the
    content; see ``validate_config``.
    """
    if len(text) > MAX_DOCUMENT_CHARS:
        raise DefinitionError(
            f"{filename}: the document is longer than {MAX_DOCUMENT_CHARS:,} characters"
        )
    stripped = text.lstrip("\ufeff \t\r\n")
    if filename.lower().endswith(".json"):
        document = _load_json(stripped, filename)
    elif stripped.startswith("{"):
        # JSON first: it reports JSON mistakes in JSON terms. A YAML flow mapping that is
        # not JSON (unquoted keys) falls through to the YAML reader.
        try:
            document = _load_json(stripped, filename)
        except _TooDeep:
            raise
        except DefinitionError:
            document = _load_yaml(stripped, filename)
    else:
        document = _load_yaml(stripped, filename)
    if not isinstance(document, dict):
        kind = "empty" if document is None else _kind_name(document)
        raise DefinitionError(
            f"{filename}: the top level must be a mapping (id, title, states...), but it is {kind}"
        )
    problem = nesting_problem(document)
    if problem:
        raise DefinitionError(f"{filename}: {problem}")
    result: dict[str, Any] = _detach(document, [MAX_EXPANDED_NODES], filename)
    return result


def nesting_problem(value: Any) -> str | None:
    """``"<dotted path>: nested more than MAX_DEPTH levels deep"`` for the first place of
    ``value`` (a top-level mapping is level 1) that is, or None.

    Iterative, since the recursion limit is what it protects, and it stops after
    MAX_EXPANDED_NODES values, since YAML aliases can make a small document enormous (the
    caller's own expansion check refuses those).
    """
    # (value, depth, key, parent entry): the parents form a chain, so the path of the place
    # found is rebuilt at the end instead of being kept for every value.
    stack: list[tuple[Any, int, str, Any]] = [(value, 1, "", None)]
    visited = 0
    while stack and visited < MAX_EXPANDED_NODES:
        entry = stack.pop()
        node, depth = entry[0], entry[1]
        visited += 1
        if isinstance(node, dict):
            children = [(str(key), item) for key, item in node.items()]
        elif isinstance(node, list):
            children = [(f"[{index}]", item) for index, item in enumerate(node)]
        else:
            continue
        if depth > MAX_DEPTH:
            return f"{_path_of(entry)}: nested more than {MAX_DEPTH} levels deep"
        stack.extend((item, depth + 1, key, entry) for key, item in children)
    return None


def _path_of(entry: tuple[Any, int, str, Any]) -> str:
    keys: list[str] = []
    while entry is not None and entry[3] is not None:
        keys.append(entry[2])
        entry = entry[3]
    path = ""
    for key in reversed(keys):
        path += key if key.startswith("[") or not path else f".{key}"
    if len(path) > 80:
        path = path[:77] + "..."
    return path or "top level"


def _kind_name(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as people write them by hand.
        super().increase_indent(flow, False)


_YAML11 = yaml.resolver.Resolver()


def _represent_str(dumper: _Dumper, value: str) -> ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar(_STR, value, style="|")
    # Quote what a YAML 1.1 reader (PyYAML, Ruby) would take for a date, a boolean or a
    # sexagesimal number, so exported files mean the same everywhere. ``on`` stays bare:
    # it is the format's own key and YAML 1.2 readers (js-yaml, XState tools) agree.
    if value != "on" and _YAML11.resolve(ScalarNode, value, (True, False)) != _STR:
        return dumper.represent_scalar(_STR, value, style="'")
    return dumper.represent_scalar(_STR, value)


def _represent_list(dumper: _Dumper, value: list[Any]) -> Any:
    # Short lists of plain values read best on one line (roles: [manager, security]).
    scalars = all(
        isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
    )
    flow = bool(value) and scalars and sum(len(str(item)) + 2 for item in value) <= 60
    if flow and any("\n" in item for item in value if isinstance(item, str)):
        flow = False
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


# Same resolvers as the loader, so ``on`` is written bare and ``"5000"`` gets quoted:
# what is written reads back as the same value.
_Dumper.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)


def dump_document(config: dict[str, Any], *, fmt: str) -> str:
    """Write a definition as ``"yaml"`` (block style, keys in order) or ``"json"``."""
    if fmt == "yaml":
        text: str = yaml.dump(
            config,
            Dumper=_Dumper,
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
            width=4096,
        )
        return text
    if fmt == "json":
        return json.dumps(config, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}; use 'yaml' or 'json'")
