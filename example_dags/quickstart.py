"""The quick start's first DAG: wait for a MODIFY task, then dump the instance's recent tasks.

Triggered by hand (``schedule=None``).  Both time windows are measured back from
``dag_run.run_after``, the moment the run was asked for, which every run has: a run triggered
by hand has a zero-length data interval, or none at all when it has no logical date
(``airflow dags trigger`` without ``--logical-date``), so ``data_interval_start`` would find
nothing.

1. ``wait_for_modify`` waits until the newest MODIFY task created in the hour before the run
   is SUCCESS (the simulator's demo scenario starts one when the simulator starts).
2. ``dump_tasks`` writes every task of the instance created in the seven days before the run
   to a JSON file.

Run it against the simulator as the README's quick start and ``docs/quickstart.md`` show.
"""

# [START quickstart]
from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator
from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor

# The simulator's demo instance "factory-east"; use your own instance's ID against IoTDA.
INSTANCE_ID = "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01"
OUTPUT_DIR = os.environ.get("IOTDA_QUICKSTART_DIR", "/tmp/iotda-quickstart")

with DAG(
    dag_id="iotda_quickstart",
    schedule=None,  # triggered by hand
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["iotda", "example"],
):
    # [START quickstart_sensor]
    wait_for_modify = IoTDAInstanceTaskSensor(
        task_id="wait_for_modify",
        iotda_conn_id="iotda_default",
        instance_id=INSTANCE_ID,
        instance_task_type="MODIFY",
        # The newest MODIFY created at most an hour before the run was triggered.
        created_after="{{ (dag_run.run_after - macros.timedelta(hours=1)) | ts }}",
        deferrable=True,  # wait in the triggerer, not in a worker slot
        poke_interval=5,  # the simulator is quick; a minute or more against IoTDA
        timeout=dt.timedelta(minutes=30),
    )
    # [END quickstart_sensor]

    dump_tasks = IoTDAInstanceTaskListOperator(
        task_id="dump_tasks",
        iotda_conn_id="iotda_default",
        instance_ids=[INSTANCE_ID],
        # The seven days before the run: created_after <= create_time < created_before.
        created_after="{{ (dag_run.run_after - macros.timedelta(days=7)) | ts }}",
        created_before="{{ dag_run.run_after | ts }}",
        destination="file://" + OUTPUT_DIR + "/tasks-{{ dag_run.run_after | ts_nodash }}.json",
    )

    wait_for_modify >> dump_tasks
# [END quickstart]
