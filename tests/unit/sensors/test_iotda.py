"""Unit tests of IoTDAInstanceTaskSensor: constructor checks, poke outcomes, poke / reschedule /
deferrable execution and execute_complete (IoTDA answers come from requests-mock)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import Any

import pendulum
import pytest
import requests
import requests_mock as rm
from airflow.sdk import PokeReturnValue
from iotda_test_values import (
    MODIFY_ID,
    OLD_MODIFY_ID,
    TASKS_URL,
    TEST_INSTANCE,
    TEST_SK,
    history,
    page,
)
from iotda_test_values import pending_task as task_json
from structlog.testing import capture_logs

from airflow_provider_iotda import config
from airflow_provider_iotda.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

try:
    from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred
except ImportError:  # Airflow 3.1: only in airflow.exceptions
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowRescheduleException,
        TaskDeferred,
    )
from airflow_provider_iotda.sensors import iotda as sensor_module
from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor
from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

from .sensor_support import FakeTI


def make_sensor(**kwargs: Any) -> IoTDAInstanceTaskSensor:
    kwargs.setdefault("task_id", "wait_for_modify")
    if "instance_task_id" not in kwargs:
        kwargs.setdefault("instance_task_type", "MODIFY")
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poke_interval", 1 if kwargs["deferrable"] else 0)
    kwargs.setdefault("timeout", 3600)
    return IoTDAInstanceTaskSensor(**kwargs)


# Airflow 3.1 warns on every connection lookup that a conn_type holding "_" is not an RFC 3986
# scheme (it caches connections as URIs); not a line of ours.
_AIRFLOW_31_URI_WARNING = "Connection schemes (type: "


def events(logs: list[dict[str, Any]], level: str | None = None) -> list[str]:
    return [
        e["event"]
        for e in logs
        if (level is None or e["log_level"] == level)
        and not str(e["event"]).startswith(_AIRFLOW_31_URI_WARNING)
    ]


# -- constructor (DAG parse time) ------------------------------------------------------------


def test_needs_exactly_one_way_to_name_the_task() -> None:
    with pytest.raises(ValueError, match=r"exactly one of instance_task_id .* instance_task_type"):
        IoTDAInstanceTaskSensor(task_id="s")
    with pytest.raises(ValueError, match="exactly one of instance_task_id"):
        IoTDAInstanceTaskSensor(
            task_id="s", instance_task_id=MODIFY_ID, instance_task_type="MODIFY"
        )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"instance_id": "../other-instance"}, "instance_id"),
        ({"instance_id": "6B6F5C3E"}, "instance_id"),
        ({"instance_task_type": "modify"}, "instance_task_type"),
        ({"instance_task_type": None, "instance_task_id": "0a1b/../x"}, "instance_task_id"),
        ({"created_after": "not a time"}, "created_after"),
        ({"success_statuses": []}, "success_statuses"),
        ({"failure_statuses": ["failed"]}, "failure_statuses"),
        ({"not_found_timeout": -1}, "not_found_timeout"),
    ],
)
def test_bad_literal_values_fail_at_parse_time(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make_sensor(**kwargs)


def test_deferrable_needs_a_poke_interval() -> None:
    with pytest.raises(ValueError, match="poke_interval must be greater than 0"):
        make_sensor(deferrable=True, poke_interval=0)


def test_status_sets_must_be_disjoint() -> None:
    with pytest.raises(ValueError, match="both contain FAILED"):
        make_sensor(success_statuses={"SUCCESS", "FAILED"})


def test_created_after_only_with_a_task_type() -> None:
    with pytest.raises(ValueError, match="created_after applies only with instance_task_type"):
        make_sensor(instance_task_id=MODIFY_ID, created_after="2024-01-01T00:00:00Z")


def test_templates_are_not_validated_at_parse_time() -> None:
    sensor = make_sensor(
        instance_id="{{ params.instance_id }}",
        instance_task_type="{{ params.task_type }}",
        created_after="{{ data_interval_start }}",
    )
    assert sensor.instance_id == "{{ params.instance_id }}"
    assert set(sensor.template_fields) == {
        "instance_id",
        "instance_task_id",
        "instance_task_type",
        "created_after",
        "iotda_conn_id",
    }


def test_parameters_are_kept_and_normalised() -> None:
    sensor = make_sensor(
        created_after=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        success_statuses=["SUCCESS", "DONE"],
        not_found_timeout=dt.timedelta(minutes=2),
    )
    assert sensor.success_statuses == frozenset({"SUCCESS", "DONE"})
    assert sensor.failure_statuses == frozenset({"FAILED"})
    assert sensor.not_found_timeout == 120.0
    assert sensor.iotda_conn_id == config.DEFAULT_CONN_ID == sensor_module.DEFAULT_CONN_ID
    assert make_sensor(not_found_timeout=None).not_found_timeout is None


def test_deferrable_defaults_to_the_airflow_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert IoTDAInstanceTaskSensor(task_id="a", instance_task_type="MODIFY").deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert IoTDAInstanceTaskSensor(task_id="b", instance_task_type="MODIFY").deferrable is False
    assert make_sensor(deferrable=True).deferrable is True


def test_importing_the_sensor_is_cheap() -> None:
    # What Airflow's own BaseSensorOperator imports is not ours to count (on 3.1 it already
    # imports airflow.triggers.base): only what importing our module adds.
    code = (
        "import sys\n"
        "from airflow.sdk import BaseSensorOperator\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_iotda.sensors.iotda\n"
        "heavy = [m for m in ('requests', 'httpx', 'airflow_provider_iotda.hooks.iotda',"
        " 'airflow_provider_iotda.hooks.iotda_async', 'airflow_provider_iotda.triggers.iotda',"
        " 'airflow.triggers.base', 'croniter') if m in sys.modules and m not in before]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_created_after_template_is_rendered_then_validated(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, json=history("SUCCESS"))
    sensor = make_sensor(created_after="{{ data_interval_start }}")
    sensor.render_template_fields({"data_interval_start": pendulum.datetime(2024, 4, 15)})
    assert sensor.created_after == "2024-04-15 00:00:00+00:00"
    result = sensor.poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.xcom_value["task_id"] == MODIFY_ID


# -- poke: outcomes --------------------------------------------------------------------------


def test_success_returns_the_task_as_xcom(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=history("SUCCESS", end_time="2024-05-01T10:20:00.000Z"))
    result = make_sensor().poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value["task_id"] == MODIFY_ID
    assert result.xcom_value["status"] == "SUCCESS"
    assert result.xcom_value["end_time"] == "2024-05-01T10:20:00.000Z"
    assert result.xcom_value["target_config"]["flavor"]["type"] == "iotda.standard.s3"
    json.dumps(result.xcom_value)  # XCom-able
    assert requests_mock.call_count == 1


def test_waits_for_a_task_by_id(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=history("RUNNING"))
    with pytest.raises(AirflowFailException, match=OLD_MODIFY_ID):
        make_sensor(instance_task_id=OLD_MODIFY_ID).poke({})


def test_failed_task_fails_without_retry_and_says_why(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, json=history("FAILED", status_detail="Insufficient resources"))
    with pytest.raises(AirflowFailException) as info:
        make_sensor().poke({})
    message = str(info.value)
    for part in (MODIFY_ID, "MODIFY", TEST_INSTANCE, "FAILED", "Insufficient resources"):
        assert part in message


def test_failed_task_can_allow_retries(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=history("FAILED"))
    with pytest.raises(AirflowException) as info:
        make_sensor(retry_on_failed_task=True).poke({})
    assert not isinstance(info.value, AirflowFailException)
    assert "IoTDA gave no status_detail" in str(info.value)


def test_custom_statuses(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=history("RUNNING"))
    result = make_sensor(success_statuses={"RUNNING"}).poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.xcom_value["status"] == "RUNNING"
    with pytest.raises(AirflowFailException, match="ended RUNNING"):
        make_sensor(failure_statuses=["RUNNING", "FAILED"]).poke({})


@pytest.mark.parametrize("status", ["PENDING", "RUNNING", "ROLLING_BACK"])
def test_other_statuses_keep_waiting_and_log_one_line(
    iotda_conn: str, requests_mock: rm.Mocker, status: str
) -> None:
    requests_mock.get(TASKS_URL, json=history(status, progress=45))
    sensor = make_sensor()
    sensor._started_at = time.time() - 125
    with capture_logs() as logs:
        assert sensor.poke({}) is False
    assert requests_mock.call_count == 1
    (line,) = events(logs)
    assert MODIFY_ID in line
    assert "MODIFY" in line
    assert status in line
    assert "progress 45%" in line
    assert "waited 2 min 0" in line


def test_created_after_picks_only_newer_tasks(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=history("SUCCESS"))
    sensor = make_sensor(created_after="2024-05-01T10:00:00.001Z")
    with capture_logs() as logs:
        assert sensor.poke({}) is False
    assert "does not list the newest MODIFY task created at or after" in events(logs)[0]


# -- poke: errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        {"status_code": 503, "json": {"error_code": "IOTDA.000010", "error_msg": "busy"}},
        {"status_code": 500, "text": "oops"},
        {
            "status_code": 429,
            "json": {"error_code": "APIG.0308", "error_msg": "throttled"},
            "headers": {"Retry-After": "2"},
        },
        {"exc": requests.exceptions.ConnectTimeout},
        {"exc": requests.exceptions.ConnectionError},
        {"status_code": 200, "text": "<html>gateway</html>"},
    ],
)
def test_transient_errors_never_fail_the_sensor(
    iotda_conn: str, requests_mock: rm.Mocker, failure: dict[str, Any], retry_sleeps: list[float]
) -> None:
    # 4 attempts (the connection's max_retries=3) fail, then IoTDA answers again.
    requests_mock.get(TASKS_URL, [failure] * 4 + [{"json": history("SUCCESS")}])
    sensor = make_sensor()
    with capture_logs() as logs:
        assert sensor.poke({}) is False
    assert requests_mock.call_count == 4
    assert len(retry_sleeps) == 3
    assert any("poking again later" in line for line in events(logs, "warning"))
    result = sensor.poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.xcom_value["status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "IOTDA.000006"), (401, "APIGW.0301"), (403, "IOTDA.000003"), (404, "IOTDA.000007")],
)
def test_client_errors_fail_at_once(
    iotda_conn: str, requests_mock: rm.Mocker, status: int, code: str
) -> None:
    requests_mock.get(
        TASKS_URL,
        status_code=status,
        json={"error_code": code, "error_msg": "rejected"},
        headers={"X-Request-Id": "req-42"},
    )
    with pytest.raises(AirflowException) as info:
        make_sensor().poke({})
    assert not isinstance(info.value, AirflowFailException)
    assert requests_mock.call_count == 1
    assert code in str(info.value)
    assert "req-42" in str(info.value)
    assert TEST_SK not in str(info.value)


def test_rendered_values_are_validated_before_any_request(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    sensor = make_sensor(instance_task_type="{{ params.t }}")
    sensor.instance_task_type = "modify; DROP"  # what the template rendered to
    with pytest.raises(ValueError, match="instance_task_type"):
        sensor.poke({})
    sensor = make_sensor(instance_id="{{ params.i }}")
    sensor.instance_id = "../../other"
    with pytest.raises(ValueError, match="instance_id"):
        sensor.poke({})
    assert requests_mock.call_count == 0


def test_not_listed_task_is_tolerated_then_fails(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=page(task_json(OLD_MODIFY_ID, "SUCCESS", type="CREATE")))
    sensor = make_sensor(not_found_timeout=600)
    sensor._started_at = time.time() - 599
    with capture_logs() as logs:
        assert sensor.poke({}) is False
    assert "tolerated for 600 s" in events(logs)[0]
    sensor._started_at = time.time() - 601
    with pytest.raises(AirflowException, match="longer than not_found_timeout"):
        sensor.poke({})
    sensor = make_sensor(not_found_timeout=None)
    sensor._started_at = time.time() - 86400
    assert sensor.poke({}) is False


def test_hook_and_session_are_reused_between_pokes(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, json=history("PENDING"))
    sensor = make_sensor()
    sensor.poke({})
    hook, session = sensor.hook, sensor.hook.get_conn()
    sensor.poke({})
    sensor.poke({})
    assert sensor.hook is hook
    assert sensor.hook.get_conn() is session
    assert requests_mock.call_count == 3


def test_secret_never_logged(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, [{"status_code": 503, "text": "x"}] * 4 + [{"status_code": 401}])
    sensor = make_sensor()
    with capture_logs() as logs:
        sensor.poke({})
        with pytest.raises(AirflowException) as info:
            sensor.poke({})
    assert TEST_SK not in repr(logs)
    assert TEST_SK not in str(info.value)


# -- execute: poke and reschedule mode --------------------------------------------------------


def test_poke_mode_waits_until_success(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(
        TASKS_URL,
        [{"json": history("PENDING")}, {"json": history("RUNNING")}, {"json": history("SUCCESS")}],
    )
    sensor = make_sensor()
    result = sensor.execute({})
    assert result["task_id"] == MODIFY_ID
    assert result["status"] == "SUCCESS"
    assert requests_mock.call_count == 3
    assert sensor._hook is None  # closed after the run


def test_poke_mode_timeout_and_soft_fail(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=history("PENDING"))
    with pytest.raises(AirflowSensorTimeout):
        make_sensor(timeout=0).execute({})
    with pytest.raises(AirflowSkipException):
        make_sensor(timeout=0, soft_fail=True).execute({})


def test_poke_mode_failed_task_with_soft_fail_skips(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, json=history("FAILED"))
    with pytest.raises(AirflowSkipException):
        make_sensor(soft_fail=True).execute({})


def test_reschedule_mode_counts_from_the_first_poke(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, json=history("PENDING"))
    # First try of the sensor: no earlier reschedule.
    ti = FakeTI(None)
    with pytest.raises(AirflowRescheduleException):
        make_sensor(mode="reschedule", poke_interval=60).execute({"ti": ti})
    # A later reschedule: the first poke was 20 minutes ago, beyond the 10 minute timeout.
    ti = FakeTI(pendulum.now("UTC") - dt.timedelta(minutes=20))
    with pytest.raises(AirflowSensorTimeout):
        make_sensor(mode="reschedule", timeout=600).execute({"ti": ti})


def test_reschedule_mode_not_found_timeout_spans_reschedules(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, json=page())
    ti = FakeTI(pendulum.now("UTC") - dt.timedelta(seconds=400))
    with pytest.raises(AirflowRescheduleException):
        make_sensor(mode="reschedule", not_found_timeout=600).execute({"ti": ti})
    ti = FakeTI(pendulum.now("UTC") - dt.timedelta(seconds=700))
    with pytest.raises(AirflowException, match="not_found_timeout"):
        make_sensor(mode="reschedule", not_found_timeout=600).execute({"ti": ti})


# -- deferrable mode -------------------------------------------------------------------------


def test_deferrable_pokes_once_then_defers(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=history("PENDING"))
    sensor = make_sensor(
        deferrable=True,
        timeout=7200,
        poke_interval=30,
        created_after="2024-05-01T00:00:00Z",
        not_found_timeout=300,
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})
    assert requests_mock.call_count == 1
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    assert isinstance(deferred.timeout, dt.timedelta)
    assert 7190 < deferred.timeout.total_seconds() <= 7200
    trigger = deferred.trigger
    assert isinstance(trigger, IoTDAInstanceTaskTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_iotda.triggers.iotda.IoTDAInstanceTaskTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert TEST_SK not in json.dumps(kwargs)
    assert kwargs["instance_id"] == TEST_INSTANCE
    assert kwargs["instance_task_type"] == "MODIFY"
    assert kwargs["instance_task_id"] is None
    assert pendulum.parse(kwargs["created_after"]) == pendulum.datetime(2024, 5, 1)
    assert kwargs["success_statuses"] == ["SUCCESS"]
    assert kwargs["failure_statuses"] == ["FAILED"]
    assert kwargs["poll_interval"] == 30
    assert kwargs["not_found_timeout"] == 300
    assert before <= kwargs["started_at"] <= time.time()
    assert kwargs["deadline"] == kwargs["started_at"] + 7200
    rebuilt = IoTDAInstanceTaskTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_deferrable_finishes_without_deferring_when_done(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, json=history("SUCCESS"))
    assert make_sensor(deferrable=True).execute({})["status"] == "SUCCESS"
    requests_mock.get(TASKS_URL, json=history("FAILED"))
    with pytest.raises(AirflowFailException, match=MODIFY_ID):
        make_sensor(deferrable=True).execute({})
    with pytest.raises(AirflowSkipException):
        make_sensor(deferrable=True, soft_fail=True).execute({})


def test_deferrable_defers_after_a_transient_error(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, status_code=503, text="busy")
    with pytest.raises(TaskDeferred):
        make_sensor(deferrable=True).execute({})


def test_deferrable_with_zero_timeout_times_out(iotda_conn: str, requests_mock: rm.Mocker) -> None:
    requests_mock.get(TASKS_URL, json=history("PENDING"))
    with pytest.raises(AirflowSensorTimeout, match="timed out"):
        make_sensor(deferrable=True, timeout=0).execute({})


FAILED_EVENT = {"status": "failed", "task": task_json(status="FAILED"), "message": "ended FAILED"}
TIMEOUT_EVENT = {"status": "timeout", "message": "Sensor has timed out"}
IOTDA_ERROR_EVENT = {"status": "error", "reason": "iotda", "message": "IoTDA 400 IOTDA.000006"}


def resume(sensor: IoTDAInstanceTaskSensor, event: Any) -> Any:
    """Resume as Airflow does after the trigger fired: through ``resume_execution``."""
    return sensor.resume_execution("execute_complete", {"event": event}, {})


def test_a_success_event_returns_the_task() -> None:
    task = task_json(status="SUCCESS")
    event = {"status": "success", "task": task, "message": "ok"}
    assert resume(make_sensor(deferrable=True), event) == task


@pytest.mark.parametrize(
    ("flags", "event", "error", "match"),
    [
        ({}, FAILED_EVENT, AirflowFailException, "^ended FAILED$"),
        ({}, TIMEOUT_EVENT, AirflowSensorTimeout, "^Sensor has timed out$"),
        ({}, IOTDA_ERROR_EVENT, AirflowException, r"^IoTDA call failed: IoTDA 400 IOTDA\.000006$"),
        ({}, None, AirflowException, "unexpected event: None"),
        ({"soft_fail": True}, TIMEOUT_EVENT, AirflowSkipException, "soft_fail"),
        ({"soft_fail": True}, FAILED_EVENT, AirflowSkipException, "soft_fail"),
        ({"never_fail": True}, IOTDA_ERROR_EVENT, AirflowSkipException, "never_fail"),
    ],
)
def test_events_end_the_sensor_as_poke_mode_would(
    flags: dict[str, Any], event: Any, error: type[BaseException], match: str
) -> None:
    with pytest.raises(error, match=match):
        resume(make_sensor(deferrable=True, **flags), event)


def test_a_failed_task_with_retry_on_failed_task_lets_airflow_retry() -> None:
    with pytest.raises(AirflowException) as info:
        resume(make_sensor(deferrable=True, retry_on_failed_task=True), FAILED_EVENT)
    assert not isinstance(info.value, AirflowFailException)


def test_deferrable_first_poke_error_with_silent_fail_pokes_again_then_defers(
    iotda_conn: str, requests_mock: rm.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """silent_fail is the base class's: the failed poke is logged and the sensor pokes again."""
    import airflow_provider_iotda.hooks.iotda as hook_module

    monkeypatch.setattr("time.sleep", lambda seconds: None)
    calls = {"n": 0}
    real = hook_module.IoTDAHook.iter_instance_tasks

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug in the first poke")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(hook_module.IoTDAHook, "iter_instance_tasks", flaky)
    requests_mock.get(TASKS_URL, json=history("RUNNING"))
    with pytest.raises(TaskDeferred):
        make_sensor(deferrable=True, silent_fail=True, poke_interval=5).execute({})
    assert calls["n"] == 2


def test_trigger_timeout_from_airflow_is_a_sensor_timeout() -> None:
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

    sensor = make_sensor(deferrable=True)
    with pytest.raises(AirflowSensorTimeout):
        sensor.resume_execution(
            TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, {}
        )
    with pytest.raises(AirflowSkipException):
        make_sensor(deferrable=True, soft_fail=True).resume_execution(
            "execute_complete", {"event": {"status": "timeout", "message": "timed out"}}, {}
        )


def test_deferrable_first_poke_error_with_never_fail_skips(
    iotda_conn: str, requests_mock: rm.Mocker
) -> None:
    requests_mock.get(TASKS_URL, status_code=403, json={"error_code": "IOTDA.000003"})
    with pytest.raises(AirflowException, match="IOTDA"):
        make_sensor(deferrable=True).execute({})
    with pytest.raises(AirflowSkipException, match="never_fail"):
        make_sensor(deferrable=True, never_fail=True).execute({})
