"""What the zero-length-window error claims, checked in a real run of each Airflow line.

``validation.time_window`` says that a run triggered by hand gets a zero-length data interval
and offers templates for such a run (``validation.MANUAL_CREATED_AFTER`` / ``_BEFORE``): a
manual ``dag.test()`` (tests/system/dag_files/window_hint_dags.py) renders both with Airflow's own
Jinja environment and checks them with the function the list operator uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_iotda import validation

pytestmark = [pytest.mark.dag, pytest.mark.integration]


def test_a_manual_run_has_a_zero_length_interval_and_the_offered_templates_give_a_day(
    sensor_run_dag: Callable[..., tuple[Any, dict[str, Any]]],
) -> None:
    run, values = sensor_run_dag("window_hint_dags.py", "iotda_window_hint")
    assert run.state == "success"
    result = values["windows"]
    assert result["hint_seconds"] == 86400.0
    message = result["interval_error"]
    assert message is not None
    assert message.startswith("created_after must be earlier than created_before; got the same")
    assert "data_interval_start equals data_interval_end" in message
    assert "CronDataIntervalTimetable" in message
    assert validation.MANUAL_CREATED_AFTER in message
    assert "[" not in message
