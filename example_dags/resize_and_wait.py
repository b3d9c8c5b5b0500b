"""Resize an IoTDA instance and wait for the change in one step, then read the new flavor back.

What it shows
-------------
1. ``resize`` (``IoTDAResizeInstanceOperator``) orders the new flavor and waits for the MODIFY
   task that IoTDA starts.  It is deferrable: between polls it holds no worker slot, which
   matters for ``delay=True`` (the change then waits PENDING for the instance's operate window,
   possibly for hours).  It orders exactly once: nothing when the instance already has the
   flavor, no second order when a MODIFY to that flavor is already running (it waits for that
   one), a clear failure when a MODIFY to another flavor is running, and an Airflow retry of
   the task never orders a second resize.  A FAILED MODIFY fails the task with IoTDA's
   ``status_detail``.
2. ``report_new_flavor`` reads the instance back (``IoTDAHook.show_instance``) and logs its
   status and flavor next to the finished task from the operator's XCom.

Try it against the local simulator (its demo instance c5e4b3a2-... is ``iotda.standard.s2`` x 1
and ACTIVE; a resize there runs 2 s PENDING and 10 s RUNNING)::

    IOTDA_SIMULATOR_SK=sim-secret-key python -m airflow_provider_iotda.simulator \
        --ak sim-access-key --project-id 0123456789abcdef0123456789abcdef \
        --scenario demo --port 8787 &
    export AIRFLOW_CONN_IOTDA_DEFAULT='{"conn_type": "huaweicloud_iotda",
        "login": "sim-access-key", "password": "sim-secret-key",
        "extra": {"endpoint": "http://127.0.0.1:8787",
                  "project_id": "0123456789abcdef0123456789abcdef",
                  "instance_id": "c5e4b3a2-9d8c-4f7e-a6b5-1c2d3e4f5a60"}}'
    airflow dags test resize_and_wait

Against a real instance, set the connection's ``region``, ``project_id`` and AK/SK instead of
the endpoint, and pick a flavor your instance type offers.
"""

# [START resize_and_wait]
from __future__ import annotations

import logging
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_iotda.operators.instance import IoTDAResizeInstanceOperator

log = logging.getLogger(__name__)

# Seconds between polls.  5 s keeps the simulator demo quick; against the real service use a
# minute or more (the API gateway throttles, and a resize takes minutes to hours).
POKE_INTERVAL = float(os.environ.get("IOTDA_EXAMPLE_POKE_INTERVAL", "5"))

with DAG(
    dag_id="resize_and_wait",
    description="Resize an IoTDA instance, wait for its MODIFY task, read the new flavor back",
    schedule=None,  # triggered by hand or by another DAG
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["iotda", "example"],
    params={
        # Empty: the instance named by the connection's extra "instance_id".
        "instance_id": Param("", type="string", description="IoTDA instance ID (optional)"),
        "flavor_type": Param("iotda.standard.s2", type="string", pattern=r"^[A-Za-z0-9._-]+$"),
        "flavor_size": Param(2, type="integer", minimum=1),
    },
) as dag:
    # [START resize_operator]
    resize = IoTDAResizeInstanceOperator(
        task_id="resize",
        iotda_conn_id="iotda_default",
        instance_id="{{ params.instance_id }}",
        flavor_type="{{ params.flavor_type }}",
        flavor_size="{{ params.flavor_size }}",
        delay=False,  # True: run in the operate window (the task then waits PENDING until it)
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=6 * 3600,
    )
    # [END resize_operator]

    @task
    def report_new_flavor(result: dict[str, Any]) -> dict[str, Any]:
        """Read the instance back and log its flavor next to the finished MODIFY task."""
        from airflow_provider_iotda.hooks.iotda import IoTDAHook

        with IoTDAHook("iotda_default") as hook:
            instance = hook.show_instance(result["instance_id"])
        flavor = instance.flavor.describe() if instance.flavor else "unknown"
        finished = result["task"]
        if finished is None:
            log.info("instance %s: nothing had to change", instance.instance_id)
        else:
            log.info(
                "MODIFY task %s ended %s at %s (order %s)",
                finished["task_id"],
                finished["status"],
                finished["end_time"],
                result["order_id"],
            )
        log.info(
            "instance %s (%s) is %s with flavor %s",
            instance.instance_id,
            instance.name,
            instance.status,
            flavor,
        )
        return {"instance_id": instance.instance_id, "status": instance.status, "flavor": flavor}

    report_new_flavor(resize.output)
# [END resize_and_wait]
