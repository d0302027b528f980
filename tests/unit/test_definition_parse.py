"""Parsing a definition: JSON or YAML, plain data out, bounded on hostile input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.definition import (
    INVALID_DEFINITION,
    DefinitionError,
    DefinitionInfo,
    parse,
    parse_definition,
    read_info,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _problem_of(content: bytes | str, filename: str) -> str:
    with pytest.raises(DefinitionError) as raised:
        parse_definition(content, filename)
    assert raised.value.problem.reason == INVALID_DEFINITION
    return raised.value.problem.message


def test_yaml_and_json_give_the_same_data() -> None:
    as_yaml = parse_definition("id: x\nstates:\n  - name: a\n    type: inject\n", "x.sw.yaml")
    as_json = parse_definition(
        '{"id": "x", "states": [{"name": "a", "type": "inject"}]}', "x.sw.json"
    )

    assert as_yaml == as_json == {"id": "x", "states": [{"name": "a", "type": "inject"}]}


def test_json_with_a_tab_parses_as_json() -> None:
    # This real example indents with a tab, which YAML forbids and JSON allows.
    path = (
        FIXTURES
        / "kogito-serverless-examples/serverless-workflow-compensation-quarkus/compensation.sw.json"
    )

    assert parse_definition(path.read_bytes(), path.name)["id"] == "compensation"


def test_unknown_extension_is_sniffed() -> None:
    assert parse_definition('{"id": "x"}', "definition")["id"] == "x"
    assert parse_definition("id: x", "definition")["id"] == "x"


def test_not_yaml() -> None:
    message = _problem_of("id: greeting\nstates: [\n  - name: a\n", "greeting.sw.yaml")

    assert message.startswith("greeting.sw.yaml: is not valid YAML:")
    assert "line" in message


def test_not_json() -> None:
    message = _problem_of('{"id": "x",}', "x.sw.json")

    assert message.startswith("x.sw.json: is not valid JSON:")
    assert "line 1" in message


def test_a_list_is_not_a_definition() -> None:
    message = _problem_of("- id: a\n- id: b\n", "list.sw.yaml")

    assert message == (
        "list.sw.yaml: the definition is a list, not a mapping with id, start and states"
    )


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        (b"\xff\xfe\x00id", "is not UTF-8 text"),
        ("42", "the definition is a number"),
        ('{"id": NaN}', "NaN is not a JSON value"),
        ("a: 1\n---\nb: 2\n", "is not valid YAML"),
        ("id: !!binary aGVsbG8=\n", "which is not a JSON value"),
    ],
)
def test_other_content_that_is_not_a_definition(content: str | bytes, says: str) -> None:
    filename = "x.sw.json" if content[:1] in ("{", b"{") else "x.sw.yaml"

    assert says in _problem_of(content, filename)


def test_ten_megabytes_of_nested_junk_is_refused_before_it_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    junk = "[" * 5_000_000 + "]" * 5_000_000

    def never(text: str) -> Any:
        raise AssertionError("a document over the size limit was parsed")

    monkeypatch.setattr(parse, "_load_yaml", never)
    monkeypatch.setattr(parse, "_load_json", never)
    message = _problem_of(junk, "junk.sw.yaml")

    assert "10,000,000 bytes, more than the 1,048,576 allowed" in message


@pytest.mark.parametrize(
    "junk",
    [
        "a: " + "[" * 100_000 + "]" * 100_000,
        "a: " + "{b: " * 50_000 + "1" + "}" * 50_000,
        "".join(" " * level + "a:\n" for level in range(1_400)),
        '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}",
    ],
    ids=["flow sequences", "flow mappings", "block mappings", "json"],
)
def test_deep_nesting_within_the_size_limit_is_refused(junk: str) -> None:
    # How long the refusal takes is measured in bench/validation.py.
    message = _problem_of(junk, "junk.sw.json" if junk.startswith("{") else "junk.sw.yaml")

    assert "nest" in message


def test_yaml_alias_bomb_is_refused_within_its_budget() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")

    message = _problem_of("\n".join(lines), "bomb.sw.yaml")

    # The copy stopped at its budget of values: the ten thousand million the aliases stand for
    # were never made.
    assert "holds more than 100,000 values, too many for its size" in message


def test_yaml_reads_as_the_runtime_reads_it() -> None:
    definition = parse_definition(
        "id: x\nversion: 2024-05-01\nresponses:\n  200: ok\n  true: yes\nflag: true\n",
        "x.sw.yaml",
    )

    # Dates stay text and keys keep their text; plain values keep their YAML type.
    assert definition == {
        "id": "x",
        "version": "2024-05-01",
        "responses": {"200": "ok", "true": True},
        "flag": True,
    }
    json.dumps(definition)


def test_aliases_are_copied_into_plain_data() -> None:
    definition = parse_definition("a: &x {b: 1}\nc: *x\n", "x.sw.yaml")

    definition["a"]["b"] = 2
    assert definition["c"] == {"b": 1}


def test_read_info_reads_identity_as_the_runtime_does() -> None:
    info = read_info({"id": "greeting", "version": 1.0, "specVersion": "0.8", "description": "Hi"})

    assert info == DefinitionInfo(
        id="greeting",
        name="greeting",
        version="1.0",
        description="Hi",
        expression_lang="jq",
        spec_version="0.8",
    )


def test_read_info_never_raises() -> None:
    assert read_info({"id": ["x"], "name": 3, "expressionLang": None}).id == ""
    assert read_info([]).expression_lang == "jq"  # type: ignore[arg-type]
