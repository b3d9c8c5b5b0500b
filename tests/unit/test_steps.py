"""``steps.Steps``: the driver loop every sans-I/O generator of the package runs through."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from airflow_provider_iotda.steps import Steps


def _plan() -> Generator[str, object, list[object]]:
    """Asks for two things; a failure of the first is kept and the plan goes on."""
    got: list[object] = []
    try:
        got.append((yield "first"))
    except KeyError as exc:
        got.append(f"failed: {exc.args[0]}")
    got.append((yield "second"))
    return got


def test_replies_go_in_and_the_result_comes_out() -> None:
    steps = Steps(_plan())
    asked = []
    for step in steps:
        asked.append(step)
        steps.reply = step.upper()
    assert asked == ["first", "second"]
    assert steps.result == ["FIRST", "SECOND"]


def test_a_failure_is_raised_inside_the_plan_at_its_step() -> None:
    steps = Steps(_plan())
    for step in steps:
        if step == "first":
            steps.failure = KeyError("gone")
        else:
            steps.reply = 2
    assert steps.result == ["failed: gone", 2]


def _fail_the_second(steps: Steps[str, list[object]]) -> None:
    for step in steps:
        if step == "second":
            steps.failure = ValueError("second failed")


def test_a_failure_the_plan_does_not_handle_leaves_the_loop() -> None:
    with pytest.raises(ValueError, match="second failed"):
        _fail_the_second(Steps(_plan()))


def test_a_reply_is_used_once() -> None:
    """A step performed without a reply (a wait) sends None, not the previous reply."""
    steps = Steps(_plan())
    for step in steps:
        if step == "first":
            steps.reply = "kept once"
    assert steps.result == ["kept once", None]
