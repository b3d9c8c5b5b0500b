"""Test-only DAG of tests/system/test_window_messages.py: a manual run renders its data interval
and the templates the zero-length-window error offers, and checks both as the list operator
does (``validation.time_window``)."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_iotda import validation


def check_windows(
    interval_start: str, interval_end: str, after: str, before: str
) -> dict[str, Any]:
    """The error the data interval gives (``None``: none) and the offered window's length."""
    try:
        validation.time_window(interval_start, interval_end)
        interval_error = None
    except ValueError as exc:
        interval_error = str(exc)
    start, end = validation.time_window(after, before)
    assert start is not None
    assert end is not None
    return {"interval_error": interval_error, "hint_seconds": (end - start).total_seconds()}


with DAG(
    "iotda_window_hint", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")
) as dag:
    PythonOperator(
        task_id="windows",
        python_callable=check_windows,
        op_kwargs={
            "interval_start": "{{ data_interval_start | ts }}",
            "interval_end": "{{ data_interval_end | ts }}",
            "after": validation.MANUAL_CREATED_AFTER,
            "before": validation.MANUAL_CREATED_BEFORE,
        },
    )
