"""IoTDAResizeInstanceOperator / IoTDARetryInstanceTaskOperator without a DAG run: arguments,
templates, the default of ``deferrable``, the events of the trigger, cheap import.  (Runs with
the simulator are in tests/system/test_instance_operator_dags.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_iotda.compat import AirflowException, AirflowFailException
from airflow_provider_iotda.operators.instance import (
    WAIT_XCOM_KEY,
    IoTDAResizeInstanceOperator,
    IoTDARetryInstanceTaskOperator,
)

REPO = Path(__file__).resolve().parents[3]
TASK_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"


def resize(**kwargs: Any) -> IoTDAResizeInstanceOperator:
    args: dict[str, Any] = {
        "task_id": "resize",
        "flavor_type": "iotda.standard.s3",
        "flavor_size": 2,
    }
    return IoTDAResizeInstanceOperator(**{**args, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"flavor_type": "iotda standard"}, "flavor_type"),
        ({"flavor_size": 0}, "flavor_size"),
        ({"flavor_size": "two"}, "flavor_size"),
        ({"delay": "yes"}, "delay"),
        ({"is_auto_pay": 1}, "is_auto_pay"),
        ({"wait_for_completion": "false"}, "wait_for_completion"),
        ({"deferrable": "true"}, "deferrable"),
        ({"instance_id": "NOT-AN-ID"}, "instance_id"),
        ({"poke_interval": 0}, "poke_interval"),
        ({"timeout": -1}, "timeout"),
    ],
)
def test_resize_arguments_are_checked_at_parse_time(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        resize(**kwargs)


def test_templates_are_checked_when_rendered() -> None:
    task = resize(
        flavor_type="{{ params.t }}", flavor_size="{{ params.s }}", instance_id="{{ params.i }}"
    )
    assert set(task.template_fields) == {
        "instance_id",
        "flavor_type",
        "flavor_size",
        "iotda_conn_id",
    }
    assert resize(flavor_size="3").flavor_size == "3"  # a rendered number is accepted


def test_retry_operator_checks_the_task_id() -> None:
    with pytest.raises(ValueError, match="instance_task_id"):
        IoTDARetryInstanceTaskOperator(task_id="r", instance_task_id="../x")
    task = IoTDARetryInstanceTaskOperator(task_id="r", instance_task_id="{{ params.task }}")
    assert "instance_task_id" in task.template_fields


def test_deferrable_defaults_to_the_airflow_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert resize().deferrable is True
    assert resize(deferrable=False).deferrable is False
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert resize().deferrable is False


class _TI:
    def __init__(self, kept: Any) -> None:
        self.kept = kept

    def xcom_pull(self, *, task_ids: str, key: str) -> Any:
        assert key == WAIT_XCOM_KEY
        return self.kept


def test_execute_complete_maps_the_trigger_events() -> None:
    task = resize()
    done = {"status": "success", "task": {"task_id": TASK_ID, "status": "SUCCESS"}, "message": "ok"}
    assert task.execute_complete({}, done, instance_id="aa", order_id="CS1") == {
        "instance_id": "aa",
        "order_id": "CS1",
        "task": done["task"],
    }
    # dag.test() hands back only the event: the rest comes from the XCom kept before deferring.
    context: Any = {"ti": _TI({"instance_id": "bb", "order_id": "CS2"})}
    assert task.execute_complete(context, done)["order_id"] == "CS2"
    with pytest.raises(AirflowFailException, match="no quota"):
        task.execute_complete(
            {}, {"status": "failed", "message": "ended FAILED: no quota"}, instance_id="aa"
        )
    with pytest.raises(AirflowException, match="timed out"):
        task.execute_complete({}, {"status": "timeout", "message": "waited"}, instance_id="aa")
    with pytest.raises(AirflowException, match="IoTDA call failed: 403"):
        task.execute_complete(
            {}, {"status": "error", "reason": "iotda", "message": "403"}, instance_id="aa"
        )
    with pytest.raises(AirflowException, match="unexpected event"):
        task.execute_complete({}, {"nothing": 1}, instance_id="aa")


def test_retry_operator_result_names_the_task() -> None:
    task = IoTDARetryInstanceTaskOperator(task_id="r", instance_task_id=TASK_ID)
    event = {"status": "success", "task": {"task_id": TASK_ID}, "message": "ok"}
    assert task.execute_complete({}, event, instance_id="aa", instance_task_id=TASK_ID) == {
        "instance_id": "aa",
        "instance_task_id": TASK_ID,
        "task": {"task_id": TASK_ID},
    }


def test_import_is_cheap() -> None:
    code = (
        "import sys, airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_iotda.operators.instance\n"
        "added = set(sys.modules) - before\n"
        "heavy = ('airflow_provider_iotda.hooks', 'airflow_provider_iotda.triggers', 'requests',"
        " 'httpx', 'urllib3', 'tenacity', 'uvicorn', 'starlette')\n"
        "print(sorted(m for m in added if m.startswith(heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def test_registered_in_the_provider_info() -> None:
    from airflow_provider_iotda.get_provider_info import get_provider_info

    modules = [m for entry in get_provider_info()["operators"] for m in entry["python-modules"]]
    assert "airflow_provider_iotda.operators.instance" in modules
