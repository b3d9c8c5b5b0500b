"""Fault-storm trials, shared by tests/integration/reliability and
``benchmarks/reliability_storm.py``.

A *storm* is the simulator's fault injection at about 30 % 5xx (500 and 503), 10 % 429 with
``Retry-After``, 5 % dropped connections and 5 % answers slower than the client's timeout.
Two kinds of trial run in it:

* :func:`operator_trial`: ``IoTDAInstanceTaskListOperator`` dumps several instances (several
  pages each) to a JSON Lines file.  The outcome is ``complete`` (the file holds exactly what the
  simulator lists) or ``no_file`` (the task failed and nothing, not even a temporary file, was
  left); anything else is ``WRONG``.
* :func:`sensor_trial`: ``IoTDAInstanceTaskSensor`` in poke, reschedule or deferrable mode, run
  by ``dag.test()``, waits for a task that goes PENDING -> RUNNING -> SUCCESS or FAILED.  The
  outcome must match the task's end, and every status the sensor reported must be one the task
  really had.

Airflow is imported inside the functions: a caller sets ``AIRFLOW_HOME`` and friends first.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pendulum
from iotda_test_values import (
    advance_clock_after,
    endpoint_connection_json,
    failure_type,
    return_values,
)

from airflow_provider_iotda import retry
from airflow_provider_iotda.simulator import IoTDASimulator

# Recognisable credentials: the trials also check that they appear nowhere.
STORM_AK = "STORMTESTACCESSKEY01"
STORM_SK = "STORM-SECRET-KEY-do-not-leak-3b9e"
STORM_TOKEN = "STORM-SECURITY-TOKEN-do-not-leak-51d0"
STORM_PROJECT = "0123456789abcdef0123456789abcdef"
SECRETS = (STORM_SK, STORM_TOKEN)

#: The storm of issue 7: 30 % 5xx, 10 % 429 (Retry-After), 5 % dropped, 5 % too slow.
STORM_RATES = {"500": 0.15, "503": 0.15, "429": 0.10, "drop": 0.05, "slow": 0.05}
#: The client gives up on an answer after CLIENT_TIMEOUT s; a "slow" answer takes SLOW_SECONDS.
CLIENT_TIMEOUT = 0.5
SLOW_SECONDS = 1.0
RETRY_AFTER = 1
#: Retries per call in the storm connection (the default of 3 is meant for calmer weather).
STORM_MAX_RETRIES = 6
CONN_ID = "iotda_reliability_storm"
DAG_FILE = "reliability_storm_dags.py"
#: Simulated start of every storm; task IDs depend on it (and on the seed).
SIM_START = dt.datetime(2024, 5, 3, 6, 0, tzinfo=dt.UTC)

TASK_TYPES = ("CREATE", "MODIFY", "DELETE", "FREEZE", "UNFREEZE", "UPDATE_ALLOW_LISTS")
OPERATOR_INSTANCES = (
    "a1000000-0000-4000-8000-000000000001",
    "a1000000-0000-4000-8000-000000000002",
    "a1000000-0000-4000-8000-000000000003",
    "a1000000-0000-4000-8000-000000000004",
)
SENSOR_INSTANCE = "5e7d1c2b-0a9f-4e8d-b7c6-a5b4c3d2e1f0"
#: Records per page in the operator trials: several pages per instance.
PAGE_SIZE = 3


def storm_faults() -> dict[str, Any]:
    """The simulator's ``FaultConfig`` fields for a storm."""
    return {"rates": dict(STORM_RATES), "slow_seconds": SLOW_SECONDS, "retry_after": RETRY_AFTER}


def storm_connection(endpoint: str, **extra: Any) -> str:
    """``AIRFLOW_CONN_*`` JSON of the storm connection (short timeout, more retries)."""
    storm_extras = {
        "security_token": STORM_TOKEN,
        "timeout": CLIENT_TIMEOUT,
        "max_retries": STORM_MAX_RETRIES,
        **extra,
    }
    return endpoint_connection_json(
        endpoint, login=STORM_AK, password=STORM_SK, project_id=STORM_PROJECT, **storm_extras
    )


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class RetryCounter:
    """Counts the hooks' retries: every retry waits once through ``retry._sleep`` (sync) or
    ``retry._async_sleep`` (async).  The previous functions still do the waiting."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._saved: tuple[Callable[[float], None], Callable[[float], Any]] | None = None

    def __enter__(self) -> RetryCounter:
        sync_sleep, async_sleep = retry._sleep, retry._async_sleep
        self._saved = (sync_sleep, async_sleep)

        def counting_sleep(seconds: float) -> None:
            with self._lock:
                self.count += 1
            sync_sleep(seconds)

        async def counting_async_sleep(seconds: float) -> None:
            with self._lock:
                self.count += 1
            await async_sleep(seconds)

        retry._sleep = counting_sleep
        retry._async_sleep = counting_async_sleep
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._saved is not None
        retry._sleep, retry._async_sleep = self._saved  # type: ignore[assignment]


@dataclass
class TrialResult:
    """One trial: its outcome, what the simulator saw and how many retries the hooks made."""

    kind: str
    seed: int
    outcome: str
    expected: str
    detail: str = ""
    requests: int = 0
    answered_200: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    records: int = 0

    @property
    def correct(self) -> bool:
        return self.outcome != "WRONG"


# -- operator -------------------------------------------------------------------------------------


def operator_scenario(seed: int) -> dict[str, Any]:
    """Four instances with 2 to 8 finished or running tasks each over the last two days."""
    rng = random.Random(f"operator-scenario-{seed}")
    instances = []
    for instance_id in OPERATOR_INSTANCES:
        tasks = []
        for _ in range(rng.randint(2, 8)):
            final = rng.choice(["SUCCESS", "SUCCESS", "FAILED", None])
            timeline: list[list[Any]] = [["PENDING", 0], ["RUNNING", 30]]
            if final == "FAILED":
                timeline.append(["FAILED", 300, "Insufficient resources"])
            elif final == "SUCCESS":
                timeline.append(["SUCCESS", 300])
            task: dict[str, Any] = {
                "type": rng.choice(TASK_TYPES),
                "created": -rng.randint(3600, 2 * 86400),
                "timeline": timeline,
            }
            if task["type"] == "MODIFY":
                task["target_config"] = {
                    "flavor": {"type": "iotda.standard.s3", "size": rng.randint(1, 4)},
                    "charge_mode": "postPaid",
                }
            tasks.append(task)
        instances.append({"instance_id": instance_id, "tasks": tasks})
    return {"instances": instances}


def expected_records(sim: IoTDASimulator, created_after: dt.datetime) -> list[dict[str, Any]]:
    """What the dump must hold: every listed task created at or after ``created_after``, as the
    API lists it (no ``progress``), by instance and newest first."""
    out: list[dict[str, Any]] = []
    for instance_id in OPERATOR_INSTANCES:
        for task in sim.tasks(instance_id):
            created = pendulum.parse(task["create_time"])
            assert isinstance(created, pendulum.DateTime)
            if created >= created_after:
                listed = {k: v for k, v in task.items() if k != "progress"}
                out.append({"instance_id": instance_id, "project_id": STORM_PROJECT, **listed})
    return out


def operator_trial(seed: int, out_dir: Path, *, max_concurrency: int = 4) -> TrialResult:
    """Dump four instances to ``out_dir/tasks.jsonl`` in a seeded storm; classify the outcome."""
    from airflow_provider_iotda import records
    from airflow_provider_iotda.compat import AirflowException
    from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

    target = out_dir / "tasks.jsonl"
    created_after = SIM_START - dt.timedelta(days=1)
    result = TrialResult("operator", seed, outcome="WRONG", expected="complete or no file")
    with (
        IoTDASimulator(
            ak=STORM_AK,
            sk=STORM_SK,
            project_id=STORM_PROJECT,
            scenario=operator_scenario(seed),
            time_factor=0,
            start_time=SIM_START,
            seed=seed,
        ) as sim,
        environment(**{f"AIRFLOW_CONN_{CONN_ID.upper()}": storm_connection(sim.url)}),
        RetryCounter() as retries,
    ):
        want = expected_records(sim, created_after)
        sim.set_faults(**storm_faults())
        operator = IoTDAInstanceTaskListOperator(
            task_id=f"dump_{seed}",
            iotda_conn_id=CONN_ID,
            instance_ids=list(OPERATOR_INSTANCES),
            created_after=created_after,
            destination=f"file://{target}",
            page_size=PAGE_SIZE,
            max_concurrency=max_concurrency,
        )
        error: BaseException | None = None
        summary: Any = None
        try:
            summary = operator.execute({})
        except AirflowException as exc:
            error = exc
        counters = sim.counters
        result.requests = counters.requests
        result.answered_200 = counters.statuses.get("200", 0)
        result.faults = {k: v for k, v in counters.faults.items() if v}
        result.retries = retries.count
    left = sorted(p.name for p in out_dir.rglob("*")) if out_dir.exists() else []
    if error is None:
        got = records.parse(target.read_bytes(), "jsonl") if target.exists() else None
        if got == want and left == ["tasks.jsonl"] and summary["records"] == len(want):
            result.outcome, result.records = "complete", len(want)
        else:
            result.detail = f"wrote {left}, {len(got or [])} of {len(want)} records; {summary}"
    elif left == []:
        result.outcome = "no_file"
        result.detail = str(error)[:200]
    else:
        result.detail = f"failed ({error}) but left {left}"
    if target.exists() and any(s.encode() in target.read_bytes() for s in SECRETS):
        result.outcome, result.detail = "WRONG", "a secret is in the written file"
    return result


# -- sensor ---------------------------------------------------------------------------------------


_DAGS: dict[str, Any] = {}


def storm_dag(mode: str) -> Any:
    """The ``reliability_storm_<mode>`` DAG from the DAGs folder (parsed once per process)."""
    if not _DAGS:
        from iotda_test_values import dag_bag

        bag = dag_bag(DAG_FILE)
        if bag.import_errors:
            raise RuntimeError(f"cannot load {DAG_FILE}: {bag.import_errors}")
        _DAGS.update(bag.dags)
    return _DAGS[f"reliability_storm_{mode}"]


class DecisionLog:
    """Records every decision the sensor (poke/reschedule) and its trigger (deferrable) made:
    both judge each poll with ``waiting.Wait``, which calls ``waiting.decide``: it is wrapped
    there."""

    def __init__(self) -> None:
        self.decisions: list[Any] = []
        self._saved: list[tuple[Any, Any]] = []

    def __enter__(self) -> DecisionLog:
        from airflow_provider_iotda import waiting

        for module in (waiting,):
            original = module.decide

            def recording(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                decision = _original(*args, **kwargs)
                self.decisions.append(decision)
                return decision

            self._saved.append((module, original))
            module.decide = recording  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for module, original in self._saved:
            module.decide = original
        self._saved.clear()

    def statuses(self, task_id: str) -> set[str]:
        """The statuses reported for ``task_id`` (a decision without a task reports none)."""
        return {d.task.status for d in self.decisions if d.task and d.task.task_id == task_id}

    def foreign(self, task_id: str) -> list[str]:
        """Tasks other than ``task_id`` that a decision named (must be none)."""
        return [d.task.task_id for d in self.decisions if d.task and d.task.task_id != task_id]


def answered_200(sim: IoTDASimulator) -> int:
    """How many requests the simulator has answered with 200 (faults do not count)."""
    return sim.counters.statuses.get("200", 0)


def _advance_after(
    sim: IoTDASimulator, step: float, answers: tuple[int, ...]
) -> AbstractContextManager[None]:
    """Move the clock by ``step`` each time the simulator has answered 200 that many times, so
    the task moves on only after the sensor could see each state (no wall-clock race)."""
    steps = [(count, step) for count in answers]
    return advance_clock_after(sim, *steps, counter=answered_200, name="storm-clock")


def sensor_trial(mode: str, final: str, seed: int, outbox: Path) -> TrialResult:
    """Run ``reliability_storm_<mode>`` by ``dag.test()`` for a task that ends ``final``."""
    step = 10.0
    detail = "Insufficient resources for iotda.standard.s3" if final == "FAILED" else None
    timeline: list[tuple[Any, ...]] = [("PENDING", 0), ("RUNNING", step)]
    timeline.append((final, 2 * step, detail) if detail else (final, 2 * step))
    expected = "success" if final == "SUCCESS" else "failed"
    result = TrialResult(f"sensor/{mode}", seed, outcome="WRONG", expected=expected)
    outbox.unlink(missing_ok=True)
    with (
        IoTDASimulator(
            ak=STORM_AK,
            sk=STORM_SK,
            project_id=STORM_PROJECT,
            time_factor=0,
            start_time=SIM_START,
            seed=seed,
        ) as sim,
        environment(
            **{
                f"AIRFLOW_CONN_{CONN_ID.upper()}": storm_connection(sim.url),
                "IOTDA_RELIABILITY_OUTBOX": str(outbox),
            }
        ),
        RetryCounter() as retries,
        DecisionLog() as decisions,
    ):
        # Another task of the same type, created just before: it must never be reported.
        sim.add_task(SENSOR_INSTANCE, "MODIFY", [("FAILED", 0, "an older failure")], created=-60)
        task_id = sim.add_task(SENSOR_INSTANCE, "MODIFY", timeline)
        sim.set_faults(**storm_faults())
        # PENDING for two answers, RUNNING for two, then the end.
        with _advance_after(sim, step, (2, 4)):
            dag_run = storm_dag(mode).test(
                run_conf={"instance_id": SENSOR_INSTANCE, "task_id": task_id}
            )
        counters = sim.counters
        result.requests = counters.requests
        result.answered_200 = counters.statuses.get("200", 0)
        result.faults = {k: v for k, v in counters.faults.items() if v}
        result.retries = retries.count
    state = str(dag_run.state)
    failures = (
        [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []
    )
    xcom = return_values(dag_run).get("wait") if state == "success" else None
    reported = decisions.statuses(task_id)
    problems: list[str] = []
    if reported - {"PENDING", "RUNNING", final}:
        problems.append(f"reported statuses the task never had: {sorted(reported)}")
    if decisions.foreign(task_id):
        problems.append(f"reported other tasks: {sorted(set(decisions.foreign(task_id)))}")
    if final not in reported:
        problems.append(f"never decided on the final status {final}; saw {sorted(reported)}")
    if final == "SUCCESS":
        if state != "success" or not xcom or xcom.get("status") != "SUCCESS":
            problems.append(f"run {state}, XCom {xcom}, failures {failures}")
        elif xcom.get("task_id") != task_id:
            problems.append(f"XCom names task {xcom.get('task_id')}, not {task_id}")
    else:
        messages = [f["message"] for f in failures]
        expected = failure_type("AirflowFailException")
        if state != "failed" or len(failures) != 1 or failures[0]["type"] != expected:
            problems.append(f"run {state}, failures {failures}")
        elif expected != "NoneType" and not all(
            part in messages[0] for part in (task_id, "FAILED", str(detail))
        ):
            problems.append(f"failure message lacks the task's details: {messages[0]}")
    messages_seen = [d.message for d in decisions.decisions]
    text = json.dumps([messages_seen, failures, xcom], default=str)
    if any(secret in text for secret in SECRETS):
        problems.append("a secret appears in a log line, an exception or the XCom")
    result.outcome = "WRONG" if problems else state
    result.detail = "; ".join(problems)
    return result


# -- figures --------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Totals of a series of trials of one kind."""

    kind: str
    trials: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    answered_200: int = 0
    retries: int = 0
    wrong: list[TrialResult] = field(default_factory=list)

    def add(self, result: TrialResult) -> None:
        self.trials += 1
        self.outcomes[result.outcome] += 1
        self.faults.update(result.faults)
        self.requests += result.requests
        self.answered_200 += result.answered_200
        self.retries += result.retries
        if not result.correct:
            self.wrong.append(result)

    @property
    def injected(self) -> int:
        """Faults injected (latency is not a fault)."""
        return sum(v for k, v in self.faults.items() if k != "latency")
