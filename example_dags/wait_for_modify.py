"""Resize an IoTDA instance, wait for its MODIFY task to finish, then go on.

What it shows
-------------
1. ``request_resize`` stands in for the step that asks IoTDA to resize the instance (with your
   own code, Huawei's SDK or an HTTP call; resizing is not this provider's job).  It only logs,
   and returns the time from which to look for the resize's MODIFY task.
2. ``wait_for_modify`` (``IoTDAInstanceTaskSensor``) waits until that MODIFY task is SUCCESS.
   It runs in deferrable mode: between polls it holds no worker slot, only a few kilobytes in
   the triggerer, which matters for a delayed resize that stays PENDING for hours until the
   instance's operate window.  A FAILED task fails the sensor (no retries) with IoTDA's
   ``status_detail``.
3. ``report_new_flavor`` reads the finished task from the sensor's XCom and logs it.

Why "the newest MODIFY task created at or after a time"?  IoTDA's resize call does not return
the ID of the task it starts, so the sensor finds the task by type and creation time.
``request_resize`` returns "now minus ``lookback_minutes``": a few minutes cover clock skew
between this machine and IoTDA.  (Airflow's ``{{ data_interval_start }}`` is not robust for a
manually triggered run: it equals the run's logical date, which may be later than a task that
was started just before the run.)

Try it against the local simulator (its demo scenario has a MODIFY task that goes PENDING ->
RUNNING -> SUCCESS within 20 s on instance 3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01)::

    IOTDA_SIMULATOR_SK=sim-secret-key python -m airflow_provider_iotda.simulator \
        --ak sim-access-key --project-id 0123456789abcdef0123456789abcdef \
        --scenario demo --port 8787 &
    export AIRFLOW_CONN_IOTDA_DEFAULT='{"conn_type": "huaweicloud_iotda",
        "login": "sim-access-key", "password": "sim-secret-key",
        "extra": {"endpoint": "http://127.0.0.1:8787",
                  "project_id": "0123456789abcdef0123456789abcdef",
                  "instance_id": "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01"}}'
    airflow dags test wait_for_modify

Start the DAG within an hour of the simulator: the default lookback of 60 minutes is what finds
the task the simulator created when it started.
Against a real instance, keep ``lookback_minutes`` small (e.g. 5) and set the connection's
``region``, ``project_id`` and AK/SK instead of the endpoint.
"""

# [START wait_for_modify]
from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor

log = logging.getLogger(__name__)

# Seconds between polls.  5 s keeps the simulator demo quick; against the real service use a
# minute or more (the API gateway throttles, and a resize takes minutes to hours).
POKE_INTERVAL = float(os.environ.get("IOTDA_EXAMPLE_POKE_INTERVAL", "5"))

with DAG(
    dag_id="wait_for_modify",
    description="Resize an IoTDA instance, wait for its MODIFY task, then go on",
    schedule=None,  # triggered by hand or by another DAG
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["iotda", "example"],
    params={
        # Empty: the instance named by the connection's extra "instance_id".
        "instance_id": Param("", type="string", description="IoTDA instance ID (optional)"),
        "lookback_minutes": Param(60, type="integer", minimum=0, maximum=24 * 60),
    },
) as dag:

    @task
    def request_resize(params: dict[str, Any]) -> str:
        """Stand-in for the resize call.  Returns the ISO time the MODIFY task is created after."""
        requested_at = pendulum.now("UTC")
        log.info(
            "resize requested for instance %s at %s",
            params["instance_id"] or "(the connection's default instance)",
            requested_at.isoformat(),
        )
        # Look a little back from "now": IoTDA's clock and ours may differ by a few minutes.
        since = requested_at - dt.timedelta(minutes=int(params["lookback_minutes"]))
        return since.isoformat()

    resize = request_resize()

    # [START wait_for_modify_sensor]
    wait_for_modify = IoTDAInstanceTaskSensor(
        task_id="wait_for_modify",
        iotda_conn_id="iotda_default",
        # Templated: "" falls back to the connection's instance_id.
        instance_id="{{ params.instance_id }}",
        # The newest MODIFY task created at or after the time request_resize returned.
        instance_task_type="MODIFY",
        created_after="{{ ti.xcom_pull(task_ids='request_resize') }}",
        deferrable=True,  # wait in the triggerer, not in a worker slot
        poke_interval=POKE_INTERVAL,
        # A delayed resize waits for the instance's operate window: allow a day.
        timeout=dt.timedelta(hours=24),
        # Fail early if no matching task shows up at all (e.g. the resize call was rejected).
        not_found_timeout=dt.timedelta(minutes=10),
    )
    # [END wait_for_modify_sensor]

    @task
    def report_new_flavor(modify_task: dict[str, Any]) -> None:
        """Runs only after SUCCESS; the sensor's XCom is the finished task (API JSON shape)."""
        flavor = (modify_task.get("target_config") or {}).get("flavor") or {}
        log.info(
            "MODIFY task %s finished %s at %s; the instance now runs %s x %s",
            modify_task["task_id"],
            modify_task["status"],
            modify_task["end_time"],
            flavor.get("type", "?"),
            flavor.get("size", "?"),
        )

    resize >> wait_for_modify
    report_new_flavor(wait_for_modify.output)
# [END wait_for_modify]
