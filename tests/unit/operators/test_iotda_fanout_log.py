"""IoTDAInstanceTaskListOperator's log lines in the fan-out (the ``logs`` fixture of
tests/unit/conftest.py captures them down to DEBUG)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests_mock

from ..unit_support import CapturedLogs
from .operator_fakes import (
    INSTANCE_A,
    INSTANCE_B,
    INSTANCE_C,
    FakeIoTDA,
    api_task,
    connection_json,
    op,
)


@pytest.fixture
def fake_iotda(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIoTDA]:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json())
    with requests_mock.Mocker() as mocker:
        yield FakeIoTDA(mocker)


def test_the_fan_out_logs_one_info_line_and_a_warning_per_failed_instance(
    fake_iotda: FakeIoTDA, logs: CapturedLogs
) -> None:
    """Per-instance lines are DEBUG (200 INFO lines would queue the fan-out on the log lock);
    one INFO line sums the fan-out up; a failed instance stays a WARNING, one line each."""
    fake_iotda.add(INSTANCE_A, [api_task(f"a{i}") for i in range(5, 0, -1)])
    fake_iotda.add(INSTANCE_B, [api_task("b1")])
    fake_iotda.add(INSTANCE_C, [api_task("c1")])
    fake_iotda.fail[INSTANCE_B] = 404
    instances = [INSTANCE_A, INSTANCE_B, INSTANCE_C]
    op(instance_ids=instances, on_instance_error="skip", page_size=2).execute({})  # type: ignore[arg-type]

    def about_one(level: str) -> list[str]:
        return sorted(
            m for m in logs.messages(level) if m.startswith(("Instance ", "Skipped instance "))
        )

    debug, info, warning = about_one("debug"), about_one("info"), about_one("warning")
    assert info == []
    assert [m.split(", ")[0] for m in debug] == [
        f"Instance {INSTANCE_A}: 5 record(s) kept of 5 task(s) listed in 3 page(s)",
        f"Instance {INSTANCE_C}: 1 record(s) kept of 1 task(s) listed in 1 page(s)",
    ]
    (skipped,) = warning
    assert skipped.startswith(
        f"Skipped instance {INSTANCE_B} (on_instance_error='skip'): listing tasks failed "
        "after 0 page(s), "
    )
    assert "IOTDA.000006" in skipped
    (summary,) = [m for m in logs.messages("info") if m.startswith("Listed ")]
    assert summary.startswith("Listed 2 of 3 instance(s) in ")
    assert ": 6 record(s) kept of 6 task(s) listed in 4 page(s); 1 failed, 0 not started" in (
        summary
    )
