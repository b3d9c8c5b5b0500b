"""The table of fields: one declaration per field, messages in words, no square brackets.

Airflow's CLI prints errors through rich, which takes ``[a-f0-9-]`` for markup and drops it
(``airflow dags list-import-errors`` showed "1 to 36 characters of ; got ..."): no message of
the package may hold a square bracket.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

import airflow_provider_iotda
from airflow_provider_iotda import fields, validation
from airflow_provider_iotda.simulator import scenario

PACKAGE = Path(airflow_provider_iotda.__file__).parent
TEXTS = [v for v in vars(fields).values() if isinstance(v, fields.Text)]
INTEGERS = [v for v in vars(fields).values() if isinstance(v, fields.Integer)]
SECONDS = [v for v in vars(fields).values() if isinstance(v, fields.Seconds)]

#: Calls whose arguments are messages: logging, warnings, exceptions, the simulator's errors.
_LOG_METHODS = {
    "debug",
    "info",
    "warning",
    "warn",
    "error",
    "exception",
    "critical",
    "log",
    "adebug",
    "ainfo",
    "awarning",
    "aerror",
    "aexception",
}
_MESSAGE_CALLS = {"_invalid", "error_response", "fail"}
#: f-strings that are not messages: URLs (an IPv6 literal in brackets) and the table's own
#: regular expressions (fields.py builds a character class).
_NOT_MESSAGES = {"f'[{host}]'", "f'[{self.host}]'", "f'[{alphabet}]{{1,{longest}}}'"}


def _is_message_call(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return (
        name in _LOG_METHODS
        or name in _MESSAGE_CALLS
        or name.endswith(("Error", "Exception", "Warning", "Unavailable"))
    )


def _literal_parts(node: ast.AST) -> list[tuple[int, str]]:
    return [
        (sub.lineno, sub.value)
        for sub in ast.walk(node)
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
    ]


def _bracketed_messages(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        parts: list[tuple[int, str]] = []
        if isinstance(node, ast.Raise) and node.exc is not None:
            parts = _literal_parts(node.exc)
        elif isinstance(node, ast.Call) and _is_message_call(node):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                parts += _literal_parts(arg)
        elif isinstance(node, ast.JoinedStr) and ast.unparse(node) not in _NOT_MESSAGES:
            parts = [(node.lineno, v.value) for v in node.values if isinstance(v, ast.Constant)]
        found |= {
            f"{path.relative_to(root)}:{line}: {text!r}"
            for line, text in parts
            if "[" in text or "]" in text
        }
    return sorted(found)


def test_no_message_of_the_package_holds_a_square_bracket() -> None:
    """Every raise, log call, warning and f-string of the package, read from its source."""
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _bracketed_messages(path)]
    assert found == []


def test_the_scan_would_see_a_bracket(tmp_path: Path) -> None:
    """The scan above finds what it looks for (so its empty answer means something)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        'def f(x):\n    raise ValueError(f"{x} must be 1 to 36 characters of [a-f0-9-]")\n'
        'def g(log, i):\n    log.info("created in [%s, %s)", 1, 2)\n    return f"items[{i}]"\n'
        'def h(host):\n    return f"[{host}]"\n'
    )
    hits = _bracketed_messages(probe, tmp_path)
    assert len(hits) == 4, hits
    assert not any("{host}" in hit for hit in hits)


@pytest.mark.parametrize("spec", TEXTS, ids=lambda spec: spec.name)
def test_each_text_field_says_its_form_in_words(spec: fields.Text) -> None:
    with pytest.raises(ValueError) as caught:
        spec.check("\n")
    message = str(caught.value)
    assert message == f"{spec.name} must be {spec.form}; got '\\n'"
    assert "[" not in message
    assert "]" not in message


@pytest.mark.parametrize("spec", TEXTS, ids=lambda spec: spec.name)
def test_each_text_field_accepts_its_example_and_agrees_with_its_json_pattern(
    spec: fields.Text,
) -> None:
    schema = {"type": "string", "pattern": spec.json_pattern}
    if spec.example is not None:
        assert spec.check(spec.example) == spec.example
        assert jsonschema.Draft7Validator(schema).is_valid(spec.example)
    if spec.max_length is not None and spec.example is not None:
        too_long = spec.example + "a" * spec.max_length
        assert not spec.matches(too_long)
        assert not jsonschema.Draft7Validator(schema).is_valid(too_long)


@pytest.mark.parametrize("spec", TEXTS, ids=lambda spec: spec.name)
def test_a_trailing_newline_is_never_accepted(spec: fields.Text) -> None:
    """``$`` would let ``"abc\\n"`` through ``re.match``; the table anchors with ``\\Z``."""
    value = spec.example or "a"
    assert not spec.matches(value + "\n")
    assert spec.compiled.match(value + "\n") is None


@given(st.text(max_size=70))
def test_compiled_pattern_and_json_pattern_agree(value: str) -> None:
    for spec in TEXTS:
        python = spec.matches(value)
        json_side = re.search(spec.json_pattern, value) is not None and "\n" not in value
        assert python == json_side, (spec.name, value)


@pytest.mark.parametrize("spec", INTEGERS, ids=lambda spec: spec.name)
def test_each_integer_field_names_its_bounds(spec: fields.Integer) -> None:
    assert spec.check(spec.low) == spec.low
    assert spec.check(str(spec.low)) == spec.low
    with pytest.raises(ValueError, match=f"^{spec.name} must be {spec.form}; got {spec.low - 1}$"):
        spec.check(spec.low - 1)
    if spec.high is not None:
        assert spec.check(spec.high) == spec.high
        with pytest.raises(ValueError, match=rf"^{spec.name} must be an integer from"):
            spec.check(spec.high + 1)
    for bad in (True, 1.5, None, "two"):
        with pytest.raises(ValueError, match=f"^{spec.name} must be"):
            spec.check(bad)


@pytest.mark.parametrize("spec", SECONDS, ids=lambda spec: spec.name)
def test_each_duration_field_has_a_valid_default(spec: fields.Seconds) -> None:
    assert spec.default is not None
    assert spec.check(spec.default) == spec.default
    with pytest.raises(ValueError, match=f"^{spec.name} must be a number of seconds greater"):
        spec.check(0)


def test_validation_and_the_simulator_read_the_same_declarations() -> None:
    """One declaration per field: the simulator's patterns are the table's objects."""
    assert scenario.INSTANCE_ID_PATTERN is fields.INSTANCE_ID.compiled
    assert scenario.TASK_ID_PATTERN is fields.TASK_ID.compiled
    assert scenario.FLAVOR_TYPE_PATTERN is fields.FLAVOR_TYPE.compiled
    assert scenario.WINDOW_TIME_PATTERN is fields.WINDOW_TIME.compiled
    for check, spec in [
        (validation.instance_id, fields.INSTANCE_ID),
        (validation.instance_task_id, fields.TASK_ID),
        (validation.project_id, fields.PROJECT_ID),
        (validation.flavor_type, fields.FLAVOR_TYPE),
    ]:
        with pytest.raises(ValueError) as from_validation:
            check("BAD VALUE")
        with pytest.raises(scenario.ScenarioError) as from_scenario:
            scenario.make_flavor({"type": "BAD VALUE", "size": 1})
        assert spec.form in str(from_validation.value)
    assert fields.FLAVOR_TYPE.form in str(from_scenario.value)


def test_the_simulator_s_scenario_errors_say_the_form_in_words() -> None:
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.Scenario.from_dict({"instances": [{"instance_id": "NOT-HEX"}]})
    assert str(caught.value) == (
        "instance_id must be 1 to 36 characters of lower-case letters a-f, digits and "
        "hyphens; got 'NOT-HEX'"
    )
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.Scenario.from_dict(
            {"instances": [{"instance_id": "ab", "tasks": [{"type": "MODIFY", "timeline": [1]}]}]}
        )
    assert str(caught.value).startswith("instances.0.tasks.0.timeline.0 must be a list of")
