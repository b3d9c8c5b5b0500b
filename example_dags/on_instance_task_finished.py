"""Start a DAG when a task of an IoTDA instance finishes (event-driven scheduling).

What it shows
-------------
The resize (or freeze, or access change) is ordered elsewhere -- in the console, by another
team, in the instance's operate window -- and the follow-up work should start when IoTDA's task
finishes.  The asset ``iotda_instance_tasks_finished`` has a watcher,
``IoTDAInstanceTaskEventTrigger``, that polls the instance's task list in the triggerer and
sends one asset event per task that reaches SUCCESS or FAILED.  The DAG is scheduled on that
asset, so each event starts a run:

1. ``report_finished_tasks`` reads the events (``triggering_asset_events``) and logs which task
   finished; its return value is the list of finished tasks.
2. ``by_outcome`` branches: ``on_success`` for a task that succeeded, ``on_failure`` for one that
   failed (both, should one run carry two events: events that arrive before the scheduler
   starts the run are delivered together).

Tasks already finished when the watcher first looks are history and start nothing.

Try it against the local simulator::

    IOTDA_SIMULATOR_SK=sim-secret-key python -m airflow_provider_iotda.simulator \
        --ak sim-access-key --project-id 0123456789abcdef0123456789abcdef --port 8787 &
    export AIRFLOW_CONN_IOTDA_DEFAULT='{"conn_type": "huaweicloud_iotda",
        "login": "sim-access-key", "password": "sim-secret-key",
        "extra": {"endpoint": "http://127.0.0.1:8787",
                  "project_id": "0123456789abcdef0123456789abcdef"}}'
    export IOTDA_EXAMPLE_INSTANCE_ID=3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01
    airflow standalone   # or api-server, scheduler, dag-processor and triggerer

The simulator starts empty: create the instance, so the watcher's first look finds it, then,
once the triggerer has logged that first look, add a task (docs/simulator.md, the control
endpoint) and watch a run start when it finishes, 20 s later::

    curl -s -XPOST localhost:8787/_sim/instances \
        -d '{"instance_id": "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01"}'
    curl -s -XPOST localhost:8787/_sim/tasks -d '{"instance_id":
        "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01", "type": "MODIFY",
        "timeline": [["PENDING", 0], ["RUNNING", 5], ["SUCCESS", 20]]}'

``IOTDA_EXAMPLE_EVENT_POLL_INTERVAL=5`` makes the demo quicker.  A watcher's arguments cannot
be templated (it runs with no DAG-run context): the instance ID is read from the environment
when the file is parsed, as any other constant of a DAG file.
"""

# [START on_instance_task_finished]
from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskEventTrigger

log = logging.getLogger(__name__)

INSTANCE_ID = os.environ.get("IOTDA_EXAMPLE_INSTANCE_ID", "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01")
CONN_ID = os.environ.get("IOTDA_EXAMPLE_CONN_ID", "iotda_default")
# Seconds between polls of the task list.  Against the real service keep a minute or more
# (the API gateway throttles); a watcher polls for as long as the DAG is deployed.
POLL_INTERVAL = float(os.environ.get("IOTDA_EXAMPLE_EVENT_POLL_INTERVAL", "60"))

# [START watcher_asset]
TASKS_FINISHED = Asset(
    name="iotda_instance_tasks_finished",
    watchers=[
        AssetWatcher(
            name="iotda_instance_task_watcher",
            trigger=IoTDAInstanceTaskEventTrigger(
                iotda_conn_id=CONN_ID,
                instance_id=INSTANCE_ID,
                statuses=["SUCCESS", "FAILED"],
                poll_interval=POLL_INTERVAL,
            ),
        )
    ],
)
# [END watcher_asset]


def finished_tasks(events: Iterable[Any]) -> list[dict[str, Any]]:
    """The IoTDA tasks named by asset events (``event.extra["payload"]``), in event order."""
    tasks: list[dict[str, Any]] = []
    for event in events:
        payload = (event.extra or {}).get("payload") or {}
        if "task" in payload:
            tasks.append({**payload["task"], "instance_id": payload.get("instance_id")})
    return tasks


def branches_for(tasks: Iterable[dict[str, Any]]) -> list[str]:
    """``on_success`` if a task succeeded, ``on_failure`` if one failed (both if both)."""
    statuses = {t["status"] for t in tasks}
    return [
        branch
        for branch, status in (("on_success", "SUCCESS"), ("on_failure", "FAILED"))
        if status in statuses
    ]


with DAG(
    dag_id="on_instance_task_finished",
    description="Start when a task of an IoTDA instance finishes; branch on its outcome",
    schedule=[TASKS_FINISHED],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["iotda", "example"],
) as dag:

    @task
    def report_finished_tasks(**context: Any) -> list[dict[str, Any]]:
        """Log each task that finished; return them (the API's JSON shape plus instance_id)."""
        tasks = finished_tasks(context["triggering_asset_events"][TASKS_FINISHED])
        for t in tasks:
            log.info(
                "%s task %s of instance %s finished %s at %s%s",
                t["type"],
                t["task_id"],
                t["instance_id"],
                t["status"],
                t.get("end_time"),
                f": {t['status_detail']}" if t.get("status_detail") else "",
            )
        return tasks

    @task.branch
    def by_outcome(tasks: list[dict[str, Any]]) -> list[str]:
        return branches_for(tasks)

    @task
    def on_success(tasks: list[dict[str, Any]]) -> list[str]:
        """The follow-up work (raise device quotas, re-run load tests...) goes here."""
        done = [t["task_id"] for t in tasks if t["status"] == "SUCCESS"]
        log.info("succeeded: %s", ", ".join(done))
        return done

    @task
    def on_failure(tasks: list[dict[str, Any]]) -> list[str]:
        """Tell someone: the change did not happen (status_detail says why)."""
        failed = [t["task_id"] for t in tasks if t["status"] == "FAILED"]
        log.warning("failed: %s", ", ".join(failed))
        return failed

    finished = report_finished_tasks()
    by_outcome(finished) >> [on_success(finished), on_failure(finished)]
# [END on_instance_task_finished]
