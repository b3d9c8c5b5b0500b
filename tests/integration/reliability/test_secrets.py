"""Secrets: the SK and the security token appear nowhere.

DAG runs (the example DAGs and the storm sensor DAG, succeeding and failing) use a
recognisable SK and token, made unique for this test session so that only these runs could
have put them anywhere.  Then every log line (stdout/stderr and stdlib logging), exception text
(``str``, ``repr``, traceback), XCom value, rendered template field, trigger row, the whole
metadata database file and every file written are searched for them.

``dag.test()`` runs tasks in-process, where Airflow does *not* mask logs (its supervisor does),
so these runs show what the provider itself writes, unmasked.  A separate test runs a task
through Airflow's real supervisor and checks that the SK and token a careless task logs come
out as ``***`` in the task log.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
import uuid
from pathlib import Path
from typing import Any

import pendulum
import pytest
from iotda_test_values import TEST_AK, TEST_PROJECT, dag_bag, failure_type, supervise_task_function

from airflow_provider_iotda.errors import IoTDAError
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.simulator import DEMO_SCENARIO_PATH, IoTDASimulator

from . import storm

pytestmark = [pytest.mark.dag, pytest.mark.integration]

_UNIQUE = uuid.uuid4().hex[:12]
SECRET_SK = f"RELIABILITY-SK-do-not-leak-{_UNIQUE}"
SECRET_TOKEN = f"RELIABILITY-TOKEN-do-not-leak-{_UNIQUE}"
SECRETS = (SECRET_SK, SECRET_TOKEN)
DEMO_INSTANCES = [
    "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01",
    "a8d1e6b2-4c3f-4a9e-8b7d-2f1c0e9d8a76",
    "c5e4b3a2-9d8c-4f7e-a6b5-1c2d3e4f5a60",
]


def connection(endpoint: str, **extra: Any) -> str:
    extras = {
        "endpoint": endpoint,
        "project_id": TEST_PROJECT,
        "security_token": SECRET_TOKEN,
        "timeout": storm.CLIENT_TIMEOUT,
        "max_retries": storm.STORM_MAX_RETRIES,
        **extra,
    }
    return json.dumps(
        {"conn_type": "huaweicloud_iotda", "login": TEST_AK, "password": SECRET_SK, "extra": extras}
    )


def simulator(**kwargs: Any) -> IoTDASimulator:
    return IoTDASimulator(
        ak=TEST_AK, sk=SECRET_SK, project_id=TEST_PROJECT, time_factor=0, seed=5, **kwargs
    )


def load_dag(file_name: str, dag_id: str) -> Any:
    bag = dag_bag(file_name)
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def stored_values(runs: list[Any]) -> list[str]:
    """XComs, rendered template fields, task instance rows and trigger rows of ``runs``."""
    from airflow import settings
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    out: list[str] = []
    assert settings.Session is not None
    with settings.Session() as session:
        for run in runs:
            for row in session.scalars(
                XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id)
            ).all():
                out.append(f"xcom {row.task_id}.{row.key}: {XComModel.deserialize_value(row)!r}")
            for rtif in session.scalars(
                select(RenderedTaskInstanceFields).where(
                    RenderedTaskInstanceFields.run_id == run.run_id
                )
            ).all():
                out.append(f"rendered {rtif.task_id}: {rtif.rendered_fields!r}")
            for ti in session.scalars(
                select(TaskInstance).where(TaskInstance.run_id == run.run_id)
            ).all():
                out.append(f"ti {ti.task_id}: {ti.next_kwargs!r} {ti.next_method!r} {ti.state}")
        for trigger in session.scalars(select(Trigger)).all():
            out.append(f"trigger {trigger.classpath}: {trigger.kwargs!r}")
    return out


@pytest.fixture
def everything(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """Collects what the runs produce; the test adds runs, files and exceptions."""
    caplog.set_level(logging.DEBUG)
    return {"runs": [], "texts": [], "dirs": []}


def assert_nowhere(found: dict[str, Any], capfd: Any, caplog: Any, home: Path) -> list[str]:
    out, err = capfd.readouterr()
    places: dict[str, str] = {
        "stdout": out,
        "stderr": err,
        "stdlib logging": caplog.text,
        **{f"text {i}": text for i, text in enumerate(found["texts"])},
        **{f"stored {i}": value for i, value in enumerate(stored_values(found["runs"]))},
    }
    leaks = [name for name, text in places.items() if any(s in text for s in SECRETS)]
    scanned = 0
    for directory in [home, *found["dirs"]]:
        for path in Path(directory).rglob("*"):
            if path.is_file():
                scanned += 1
                data = path.read_bytes()
                leaks += [f"file {path}" for s in SECRETS if s.encode() in data]
    assert leaks == [], leaks
    assert scanned > 0
    # The runs did talk: the output is not empty, so the search above meant something.
    assert "IoTDA" in out + err + caplog.text
    return list(places)


def exception_texts(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), "".join(traceback.format_exception(error))])


def test_no_secret_in_logs_exceptions_xcom_rendered_fields_db_or_files(
    airflow_db: Path,
    everything: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    runs: list[Any] = everything["runs"]
    texts: list[str] = everything["texts"]
    outbox = tmp_path / "failures.jsonl"
    audit_base = tmp_path / "audit"
    everything["dirs"].append(tmp_path)

    # 1. wait_for_modify (the example DAG, deferrable sensor) in a mild storm.
    monkeypatch.setenv("IOTDA_EXAMPLE_POKE_INTERVAL", "0.2")
    with simulator(scenario=DEMO_SCENARIO_PATH) as sim:
        monkeypatch.setenv(
            "AIRFLOW_CONN_IOTDA_DEFAULT", connection(sim.url, instance_id=DEMO_INSTANCES[0])
        )
        sim.set_faults(next_faults=["429", "500", "drop", "none", "503"])
        with storm._advance_after(sim, 10.0, (2, 3)):
            run = load_dag("wait_for_modify.py", "wait_for_modify").test()
        assert str(run.state) == "success"
        runs.append(run)

    # 2. audit_instance_tasks (the example DAG, operator to a file, then a report task).
    monkeypatch.setenv("IOTDA_AUDIT_BASE", str(audit_base))
    monkeypatch.setenv("AIRFLOW_VAR_IOTDA_AUDIT_INSTANCE_IDS", json.dumps(DEMO_INSTANCES))
    now = pendulum.now("UTC")
    with simulator(scenario=DEMO_SCENARIO_PATH, start_time=now) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection(sim.url))
        sim.set_faults(next_faults=["503", "none", "429"])
        run = load_dag("audit_instance_tasks.py", "audit_instance_tasks").test(logical_date=now)
        assert str(run.state) == "success"
        runs.append(run)
        assert any(audit_base.rglob("tasks.*"))

        # 3. ... and failing: an instance that does not exist (the exception is logged).
        monkeypatch.setenv(
            "AIRFLOW_VAR_IOTDA_AUDIT_INSTANCE_IDS",
            json.dumps([DEMO_INSTANCES[0], "0000dead-0000-4000-8000-000000000000"]),
        )
        run = load_dag("audit_instance_tasks.py", "audit_instance_tasks").test(
            logical_date=now.add(seconds=1)
        )
        assert str(run.state) == "failed"
        runs.append(run)

    # 4. The storm sensor DAG, poke and reschedule mode, succeeding and failing.
    monkeypatch.setenv("IOTDA_RELIABILITY_OUTBOX", str(outbox))
    for mode, final in (("poke", "FAILED"), ("reschedule", "SUCCESS")):
        with simulator() as sim:
            monkeypatch.setenv(f"AIRFLOW_CONN_{storm.CONN_ID.upper()}", connection(sim.url))
            detail = "Insufficient resources" if final == "FAILED" else None
            end = (final, 10, detail) if detail else (final, 10)
            task_id = sim.add_task(storm.SENSOR_INSTANCE, "MODIFY", [("PENDING", 0), end])
            sim.set_faults(rates={"500": 0.2, "429": 0.1, "drop": 0.05})
            with storm._advance_after(sim, 10.0, (2,)):
                run = storm.storm_dag(mode).test(
                    run_conf={"instance_id": storm.SENSOR_INSTANCE, "task_id": task_id}
                )
            assert str(run.state) == ("success" if final == "SUCCESS" else "failed")
            runs.append(run)
    failures = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [f["type"] for f in failures] == [failure_type("AirflowFailException")]
    texts.extend(f"{f['message']}\n{f['repr']}\n{f['traceback']}" for f in failures)

    # 5. Errors raised straight from the hook: wrong SK (401), unreachable, bad connection.
    with simulator() as sim:
        monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection(sim.url, instance_id="0a"))
        hook = IoTDAHook()
        texts.append(repr(hook) + repr(hook.config) + repr(hook.get_conn().auth))
        monkeypatch.setenv(
            "AIRFLOW_CONN_IOTDA_DEFAULT",
            connection(sim.url, instance_id="0a").replace(SECRET_SK, SECRET_SK + "-wrong"),
        )
        with pytest.raises(IoTDAError) as caught:
            IoTDAHook().list_instance_tasks()
        assert caught.value.status == 401
        texts.append(exception_texts(caught.value))
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT",
        connection("http://127.0.0.1:9", instance_id="0a", max_retries=0),
    )
    with pytest.raises(IoTDAError) as caught:
        IoTDAHook().list_instance_tasks()
    texts.append(exception_texts(caught.value))
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection("http://127.0.0.1:9", timeout="x"))
    with pytest.raises(ValueError, match="extra timeout") as bad:
        IoTDAHook().list_instance_tasks()
    texts.append(exception_texts(bad.value))

    places = assert_nowhere(everything, capfd, caplog, Path(os.environ["AIRFLOW_HOME"]))
    assert len(runs) == 5
    stored = stored_values(runs)
    for kind in ("xcom", "rendered", "ti"):  # each kind of stored value was really searched
        assert any(value.startswith(kind) for value in stored), kind
    assert any(p.startswith("stored") for p in places)


def _supervised_log(dag_id: str, file_name: str, tmp_path: Path) -> str:
    """Run the DAG's only task through Airflow's real task supervisor (a forked task process
    whose log lines the supervisor writes to a file); return that log."""
    import uuid as uuid_module

    from airflow import settings
    from airflow.executors.workloads import BundleInfo
    from airflow.sdk.api.datamodels._generated import TaskInstance as TaskInstanceSDK
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor
    from airflow.utils.state import DagRunState, TaskInstanceState

    dag = load_dag(file_name, dag_id)
    # A run whose task is marked done without running: it creates the rows to supervise.
    run = dag.test(mark_success_pattern=".*")
    assert settings.Session is not None
    with settings.Session() as session:
        (ti,) = run.get_task_instances(session=session)
        run.state = DagRunState.RUNNING
        session.merge(run)
        ti.try_number += 1
        ti.state = TaskInstanceState.QUEUED
        session.merge(ti)
        session.commit()
        workload_ti = TaskInstanceSDK(
            id=uuid_module.UUID(str(ti.id)),
            task_id=ti.task_id,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            try_number=ti.try_number,
            map_index=ti.map_index,
            dag_version_id=uuid_module.UUID(str(ti.dag_version_id)),
        )
    log_path = tmp_path / "task.log"
    exit_code = supervise_task_function()(
        ti=workload_ti,
        bundle_info=BundleInfo(name="dags-folder", version=None),
        dag_rel_path=file_name,
        token="",
        client=InProcessTestSupervisor._api_client(dag),  # type: ignore[no-untyped-call]
        log_path=str(log_path),
    )
    assert exit_code == 0, log_path.read_text()
    return log_path.read_text()


def test_airflow_masks_the_sk_and_token_in_task_logs(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A careless task logs the connection's SK and token: the task log shows ``***``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_RELIABILITY_SECRETS", connection("http://127.0.0.1:9", instance_id="0a")
    )
    log = _supervised_log("reliability_secret_logging", "reliability_secret_dags.py", tmp_path)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    careless = [line["event"] for line in lines if "careless" in str(line.get("event"))]
    assert careless == [
        "careless stdlib line: the SK is ***",
        "careless hook line: the SK is ***",
        "careless stdlib line: the token is ***",
        "careless hook line: the token is ***",
    ]
    for secret in SECRETS:
        assert secret not in log
