"""Reading and writing definition files."""

from __future__ import annotations

import pytest

from approvals.machine import DefinitionError, dump_document, load_document
from approvals.machine.loader import MAX_DEPTH


def error_of(text: str, filename: str = "po.yaml") -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_document(text, filename=filename)
    return caught.value.errors


def test_yaml() -> None:
    text = """
id: po
title: Purchase order
states:
  review:
    on:
      APPROVE: done
    after:
      5000: done
      P1D: done
"""
    config = load_document(text)
    assert config["states"]["review"]["on"] == {"APPROVE": "done"}
    assert config["states"]["review"]["after"] == {5000: "done", "P1D": "done"}


def test_json() -> None:
    config = load_document('{"id": "po", "states": {"a": {"on": {"GO": "b"}}}, "n": 1.5}')
    assert config == {"id": "po", "states": {"a": {"on": {"GO": "b"}}}, "n": 1.5}


def test_json_file_errors_are_json_errors() -> None:
    assert error_of('{"id": "po",}', "po.json") == [
        "po.json: line 1, column 13: Expecting property name enclosed in double quotes"
    ]


def test_yaml_flow_mapping_that_is_not_json() -> None:
    assert load_document("{id: po, on: {GO: b}}") == {"id": "po", "on": {"GO": "b"}}


def test_on_and_yes_no_are_not_booleans() -> None:
    # YAML 1.1 would read all of these keys as booleans.
    config = load_document("on:\n  YES: a\n  NO: b\n  off: c\n  y: d\n")
    assert config == {"on": {"YES": "a", "NO": "b", "off": "c", "y": "d"}}


def test_scalars_follow_yaml_1_2() -> None:
    config = load_document(
        "date: 2025-01-31\ntime: 1:30\noctal: 010\nhex: 0x1F\nf: 1.5\nt: true\nn: null\ninf: .inf"
    )
    assert config == {
        "date": "2025-01-31",
        "time": "1:30",
        "octal": 10,
        "hex": 31,
        "f": 1.5,
        "t": True,
        "n": None,
        "inf": ".inf",
    }


def test_syntax_error_names_the_line() -> None:
    errors = error_of("id: po\nstates:\n  review:\n    on: [APPROVE\n  done: {}\n")
    assert len(errors) == 1
    assert errors[0].startswith("po.yaml: line 5, column 7: ")


def test_bad_indentation() -> None:
    [error] = error_of("id: po\nstates:\n  a: 1\n b: 2\n")
    assert error.startswith("po.yaml: line 4, column 2: expected <block end>")


def test_unterminated_quote() -> None:
    [error] = error_of("id: 'po\ntitle: x\n")
    assert "found unexpected end of stream" in error
    assert "while scanning a quoted scalar at line 1" in error


def test_duplicate_keys_are_refused() -> None:
    [error] = error_of("states:\n  review: {}\n  review: {}\n")
    assert error == (
        "po.yaml: line 3, column 3: duplicate key 'review' (while reading a mapping at line 2)"
    )


def test_duplicate_keys_in_json_are_refused_with_the_line() -> None:
    [error] = error_of('{\n  "id": "a",\n  "id": "b"\n}', "po.json")
    assert error.startswith("po.json: line 3, column 3: duplicate key 'id'")


def test_merge_keys_may_override() -> None:
    config = load_document("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n")
    assert config["d"] == {"x": 1, "y": 3}


def test_aliases_are_copies() -> None:
    config = load_document("a: &t {roles: [manager]}\nb: *t\n")
    config["a"]["roles"].append("director")
    assert config["b"] == {"roles": ["manager"]}


def test_billion_laughs_is_refused() -> None:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    assert error_of("\n".join(lines)) == ["po.yaml: the document expands to too many values"]


DEEPER_THAN_THE_PARSER = 100_000


@pytest.mark.parametrize(
    ("text", "filename"),
    [
        ('{"a":' * DEEPER_THAN_THE_PARSER + "1" + "}" * DEEPER_THAN_THE_PARSER, "deep.json"),
        ("[" * DEEPER_THAN_THE_PARSER + "]" * DEEPER_THAN_THE_PARSER, "deep.json"),
        ('{"a":' * DEEPER_THAN_THE_PARSER + "1" + "}" * DEEPER_THAN_THE_PARSER, "pasted"),
        ("a: " + "[" * DEEPER_THAN_THE_PARSER + "]" * DEEPER_THAN_THE_PARSER, "deep.yaml"),
    ],
)
def test_nesting_deeper_than_the_parser_follows_is_an_error(text: str, filename: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_document(text, filename=filename)
    assert caught.value.errors == [f"{filename}: the document is nested too deeply"]


@pytest.mark.parametrize("filename", ["deep.json", "deep.yaml"])
def test_nesting_that_parses_but_is_deeper_than_the_limit_is_an_error(filename: str) -> None:
    depth = MAX_DEPTH + 1
    text = '{"id": "x", "meta": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    with pytest.raises(DefinitionError) as caught:
        load_document(text, filename=filename)
    [message] = caught.value.errors
    assert message.startswith(f"{filename}: meta.a.a.a.")
    assert message.endswith(f": nested more than {MAX_DEPTH} levels deep")
    within = '{"id": "x", "meta": ' + '{"a": ' * (MAX_DEPTH - 2) + "1" + "}" * (MAX_DEPTH - 2) + "}"
    assert load_document(within, filename=filename)["id"] == "x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!binary aGVsbG8=", "could not determine a constructor"),
        ("a: !!python/object:os.system x", "could not determine a constructor"),
        ("a: !!set {x}", "could not determine a constructor"),
        ("true: x", "a key must be text or a whole number, not 'true' (quote it)"),
        ("1.5: x", "a key must be text or a whole number"),
    ],
)
def test_non_json_values_are_refused(text: str, message: str) -> None:
    [error] = error_of(text)
    assert error.startswith("po.yaml: line 1, column ")
    assert message in error


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("- a\n- b\n", "a list"),
        ("hello\n", "text"),
        ("", "empty"),
        ("42", "a number"),
        ("[]", "a list"),
    ],
)
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    assert error_of(text) == [
        f"po.yaml: the top level must be a mapping (id, title, states...), but it is {kind}"
    ]


def test_default_filename() -> None:
    with pytest.raises(DefinitionError, match="^<definition>: "):
        load_document("- a")


def test_definition_error_joins_messages() -> None:
    error = DefinitionError(["a: one", "b: two"])
    assert error.errors == ["a: one", "b: two"]
    assert str(error) == "a: one\nb: two"


CONFIG = {
    "id": "po",
    "title": "Bestellung für Büro",
    "states": {
        "review": {
            "description": "line one\nline two\n",
            "on": {"APPROVE": ["done"], "NO": "done"},
            "after": {"5000": "done", "P1D": "done"},
            "meta": {"task": {"roles": ["manager", "security"]}, "flag": "yes", "d": "2025-01-31"},
        },
        "done": {"type": "final"},
    },
}


def test_dump_yaml() -> None:
    text = dump_document(CONFIG, fmt="yaml")
    assert text.startswith("id: po\ntitle: Bestellung für Büro\nstates:\n  review:\n")
    assert "    description: |\n      line one\n      line two\n" in text
    assert "\n    on:\n      APPROVE: [done]\n" in text  # on stays bare
    assert "'5000': done" in text  # a string that looks like a number is quoted
    assert "roles: [manager, security]" in text
    assert "flag: 'yes'" in text and "d: '2025-01-31'" in text  # safe for YAML 1.1 readers
    assert load_document(text) == CONFIG


def test_dump_json() -> None:
    text = dump_document(CONFIG, fmt="json")
    assert text.startswith('{\n  "id": "po",\n  "title": "Bestellung für Büro",')
    assert text.endswith("}\n")
    assert load_document(text, filename="po.json") == CONFIG


def test_dump_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format 'toml'"):
        dump_document(CONFIG, fmt="toml")
