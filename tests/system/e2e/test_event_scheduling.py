"""Event-driven scheduling end to end: the example DAG on_instance_task_finished in a real
Airflow of separate processes (api-server, scheduler, dag-processor, triggerer; sqlite;
LocalExecutor), its watcher polling the simulator on loopback.

* history (tasks finished before the watcher's first look) starts no run;
* a task finishing starts exactly one run, whose event names it, and the run branches on it;
* the triggerer is killed (SIGKILL) and a task finishes meanwhile: after the restart it starts
  exactly one run (Airflow 3.3, the asset state store), and the earlier tasks none again.
  Without the store (3.1, 3.2) the documented fallback is checked instead: the restarted
  watcher takes a new first look, so that task starts nothing, and the next one does.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iotda_test_values import TEST_AK, TEST_PROJECT, TEST_SK, endpoint_connection_json

from airflow_provider_iotda import task_events
from airflow_provider_iotda.simulator import IoTDASimulator

from .airflow_stack import REPO, AirflowStack, running_stack

#: Airflow 3.3 keeps a watcher's memory in the asset state store (it survives restarts).
HAS_ASSET_STATE_STORE = importlib.util.find_spec("airflow.models.asset_state_store") is not None

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DAG_ID = "on_instance_task_finished"
INSTANCE = "e2e0c0de-0000-4000-8000-000000000001"
POLL_INTERVAL = 1.0


@pytest.fixture
def simulator() -> Iterator[IoTDASimulator]:
    """A simulator with a frozen clock: tasks change status only when the test advances it."""
    with IoTDASimulator(ak=TEST_AK, sk=TEST_SK, project_id=TEST_PROJECT, time_factor=0) as sim:
        yield sim


@pytest.fixture
def stack(tmp_path: Path, simulator: IoTDASimulator) -> Iterator[AirflowStack]:
    env = {
        "AIRFLOW_CONN_IOTDA_DEFAULT": endpoint_connection_json(simulator.url),
        "IOTDA_EXAMPLE_INSTANCE_ID": INSTANCE,
        "IOTDA_EXAMPLE_EVENT_POLL_INTERVAL": str(POLL_INTERVAL),
    }
    dag_file = REPO / "example_dags" / f"{DAG_ID}.py"
    with running_stack(tmp_path / "airflow-home", [dag_file], env) as running:
        yield running


def memory_key() -> str:
    spec = task_events.WatchSpec(frozenset(task_events.DEFAULT_EVENT_STATUSES))
    return task_events.memory_key("iotda_default", INSTANCE, spec)


def wait_for_polls(stack: AirflowStack, sim: IoTDASimulator, count: int) -> None:
    """Wait until the watcher has polled ``count`` more times (a look is a poll)."""
    target = sim.counters.requests + count
    stack.wait_for(f"{count} polls", lambda: sim.counters.requests >= target or None)


def wait_remembered(stack: AirflowStack, task_id: str, status: str) -> None:
    """3.3: wait until the watcher's memory in the asset state store has ``task_id: status``."""

    def remembered() -> bool | None:
        value = stack.asset_state(memory_key())
        memory = task_events.Memory.from_json(value)
        return (memory is not None and memory.statuses.get(task_id) == status) or None

    stack.wait_for(f"{task_id} {status} in the asset state store", remembered)


def wait_for_run(stack: AirflowStack, number: int) -> tuple[int, str]:
    runs = stack.wait_for(f"DAG run {number}", lambda: stack.dag_runs(DAG_ID)[number - 1 :] or None)
    dag_run_id, run_id, _ = runs[0]
    return dag_run_id, run_id


def wait_run_finished(stack: AirflowStack, run_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        runs = {r[1]: r[2] for r in stack.dag_runs(DAG_ID)}
        return stack.task_states(DAG_ID, run_id) if runs[run_id] in {"success", "failed"} else None

    states = stack.wait_for(f"run {run_id} to finish", finished, 180)
    runs = {r[1]: r[2] for r in stack.dag_runs(DAG_ID)}
    assert runs[run_id] == "success", f"{states}\n{stack.all_log_tails()}"
    return states


def named_tasks(payloads: list[Any]) -> list[tuple[str, str]]:
    return [(p["task"]["task_id"], p["task"]["status"]) for p in payloads]


def test_a_finished_task_starts_one_run_and_a_restart_loses_and_repeats_nothing(
    stack: AirflowStack, simulator: IoTDASimulator
) -> None:
    started = time.monotonic()
    sim = simulator
    # History: finished long before the watcher's first look.
    old_success = sim.add_task(INSTANCE, "MODIFY", [("PENDING", 0), ("SUCCESS", 60)], created=-7200)
    old_failure = sim.add_task(INSTANCE, "FREEZE", [("PENDING", 0), ("FAILED", 30)], created=-3600)
    # The news: RUNNING now, SUCCESS when the test moves the clock on.
    resize = sim.add_task(INSTANCE, "MODIFY", [("PENDING", 0), ("RUNNING", 0), ("SUCCESS", 100)])

    # The DAG is parsed, its watcher runs and takes its first look: history starts nothing.
    stack.wait_for("the watcher's first poll", lambda: sim.counters.requests > 0 or None, 180)
    if HAS_ASSET_STATE_STORE:
        wait_remembered(stack, resize, "RUNNING")
    wait_for_polls(stack, sim, 2)
    assert stack.asset_event_payloads() == []
    assert stack.dag_runs(DAG_ID) == []

    # The resize finishes: exactly one run, whose event names it; the run takes on_success.
    sim.advance(100)
    dag_run_id, run_id = wait_for_run(stack, 1)
    assert named_tasks(stack.run_event_payloads(dag_run_id)) == [(resize, "SUCCESS")]
    states = wait_run_finished(stack, run_id)
    assert states["on_success"] == "success"
    assert states["on_failure"] == "skipped"
    if HAS_ASSET_STATE_STORE:
        wait_remembered(stack, resize, "SUCCESS")
    wait_for_polls(stack, sim, 3)
    assert named_tasks(stack.asset_event_payloads()) == [(resize, "SUCCESS")]
    assert len(stack.dag_runs(DAG_ID)) == 1

    # The triggerer dies; meanwhile another task fails.  Then it comes back.
    stack.kill("triggerer")
    polls_before = sim.counters.requests
    retry = sim.add_task(INSTANCE, "MODIFY", [("PENDING", 0), ("FAILED", 1)])
    sim.advance(2)
    assert sim.counters.requests == polls_before  # nobody polled while it was down
    stack.start("triggerer")

    if HAS_ASSET_STATE_STORE:
        # What finished while it was down fires once; the earlier tasks do not fire again.
        dag_run_id, run_id = wait_for_run(stack, 2)
        assert named_tasks(stack.run_event_payloads(dag_run_id)) == [(retry, "FAILED")]
        states = wait_run_finished(stack, run_id)
        assert states["on_failure"] == "success"
        assert states["on_success"] == "skipped"
        wait_remembered(stack, retry, "FAILED")
        wait_for_polls(stack, sim, 3)
        expected = [(resize, "SUCCESS"), (retry, "FAILED")]
    else:
        # 3.1/3.2 (no asset state store): a new first look, so it is history; the next is news.
        stack.wait_for(
            "the restarted watcher", lambda: sim.counters.requests > polls_before + 2 or None, 180
        )
        assert len(stack.dag_runs(DAG_ID)) == 1
        late = sim.add_task(INSTANCE, "UPDATE_ALLOW_LISTS", [("PENDING", 0), ("SUCCESS", 1)])
        sim.advance(1)
        dag_run_id, run_id = wait_for_run(stack, 2)
        assert named_tasks(stack.run_event_payloads(dag_run_id)) == [(late, "SUCCESS")]
        wait_run_finished(stack, run_id)
        wait_for_polls(stack, sim, 3)
        expected = [(resize, "SUCCESS"), (late, "SUCCESS")]

    assert named_tasks(stack.asset_event_payloads()) == expected
    assert len(stack.dag_runs(DAG_ID)) == 2
    assert {old_success, old_failure}.isdisjoint(t for t, _ in expected)
    print(f"e2e event scheduling: {time.monotonic() - started:.0f} s after the API server was up")
