"""Fixtures of the SQL history tests: the simulator (frozen clock), a private PostgreSQL
cluster for the session, and ``database``: a fresh SQLite file or PostgreSQL database per test,
reachable as the Airflow connection ``audit_db``."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from iotda_test_values import endpoint_connection_json

from airflow_provider_iotda.simulator import IoTDASimulator
from airflow_provider_iotda.simulator.pytest_plugin import iotda_simulator_server  # noqa: F401

from .postgres_cluster import PrivateCluster, find_program

AK = "SQLHISTORYACCESSKEY1"
SK = "SQL-HISTORY-SECRET-do-not-leak-3b7e"
PROJECT = "0123456789abcdef0123456789abcdef"
SQL_CONN_ID = "audit_db"
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
#: Instances of the scenario: a busy one and a quiet one.
BUSY = "b0000000-0000-4000-8000-000000000001"
QUIET = "a0000000-0000-4000-8000-000000000002"
_names = itertools.count()


@pytest.fixture(scope="session")
def iotda_simulator_config() -> dict[str, Any]:
    """A frozen clock (tests move it), two instances with a few finished tasks each."""
    return {
        "ak": AK,
        "sk": SK,
        "project_id": PROJECT,
        "time_factor": 0,
        "seed": 24,
        "start_time": START,
        "scenario": {"instances": [{"instance_id": BUSY}, {"instance_id": QUIET}]},
    }


class Clock:
    """The operator's wall clock (``operators.iotda.utc_now``), moved by the tests."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def sim(
    iotda_simulator_server: IoTDASimulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> IoTDASimulator:
    """The simulator, reset, with three finished tasks on each instance; ``iotda_default``
    points at it."""
    iotda_simulator_server.reset()
    for instance_id in (BUSY, QUIET):
        for hours in (30, 20, 10):
            iotda_simulator_server.add_task(
                instance_id,
                "MODIFY",
                [["PENDING", 0], ["RUNNING", 60], ["SUCCESS", 600]],
                created=-3600 * hours,
                target_config={"flavor": {"type": "iotda.standard.s2", "size": 2}},
                operate_window={"start_time": "02:00", "end_time": "04:00"},
            )
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT",
        endpoint_connection_json(
            iotda_simulator_server.url, login=AK, password=SK, project_id=PROJECT, max_retries=0
        ),
    )
    return iotda_simulator_server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from airflow_provider_iotda.operators import iotda as list_operator

    value = Clock(dt.datetime(2026, 3, 2, 9, 0, 0, 123000, tzinfo=dt.UTC))
    monkeypatch.setattr(list_operator, "utc_now", value)
    return value


# -- databases -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PrivateCluster]:
    """The session's private cluster (about 5 s to start), stopped and removed at the end.
    Without Debian's postgresql the PostgreSQL cases are skipped, naming it, unless
    IOTDA_REQUIRE_POSTGRES=1 (CI), where that is an error."""
    if find_program("initdb") is None:
        if os.environ.get("IOTDA_REQUIRE_POSTGRES") == "1":
            raise RuntimeError("IOTDA_REQUIRE_POSTGRES=1 but initdb is not installed")
        pytest.skip("PostgreSQL (Debian's postgresql package: initdb, pg_ctl) is not installed")
    cluster = PrivateCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass
class Database:
    """One test's database: ``kind`` (sqlite or postgres), ``connect()`` a DB-API connection,
    ``conn_json`` the Airflow connection (also set as ``AIRFLOW_CONN_AUDIT_DB``)."""

    kind: str
    connect: Callable[[], Any]
    conn_json: str

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(sql.replace("?", "%s") if self.kind == "postgres" else sql, params)
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            conn.close()

    def execute(self, sql: str) -> None:
        conn = self.connect()
        try:
            conn.cursor().execute(sql)
            conn.commit()
        finally:
            conn.close()


def _sqlite(path: Path) -> Database:
    import sqlite3

    return Database(
        "sqlite",
        lambda: sqlite3.connect(path),
        json.dumps({"conn_type": "sqlite", "host": str(path)}),
    )


def _postgres(cluster: PrivateCluster) -> Database:
    import psycopg2

    name = f"audit_{os.getpid()}_{next(_names)}"
    admin = psycopg2.connect(host="127.0.0.1", port=cluster.port, user=cluster.user)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    admin.close()
    return Database(
        "postgres",
        lambda: psycopg2.connect(
            host="127.0.0.1", port=cluster.port, user=cluster.user, dbname=name
        ),
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": cluster.port,
                "login": cluster.user,
                "schema": name,
            }
        ),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Database:
    """A fresh, empty database of each kind, as connection ``audit_db``."""
    if request.param == "sqlite":
        db = _sqlite(tmp_path / "audit.db")
    else:
        db = _postgres(request.getfixturevalue("postgres_cluster"))
    monkeypatch.setenv(f"AIRFLOW_CONN_{SQL_CONN_ID.upper()}", db.conn_json)
    return db


@pytest.fixture
def postgres_database(
    postgres_cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch
) -> Database:
    """A fresh PostgreSQL database as connection ``audit_db`` (PostgreSQL-only tests)."""
    db = _postgres(postgres_cluster)
    monkeypatch.setenv(f"AIRFLOW_CONN_{SQL_CONN_ID.upper()}", db.conn_json)
    return db
