"""Test-wide set-up: an isolated Airflow (temporary AIRFLOW_HOME, sqlite) and shared fixtures.

The environment is set before anything imports Airflow, so no test touches ``~/airflow`` and
tests do not depend on each other's order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="iotda-test-airflow-home-"))
DAGS_FOLDER = _HOME / "dags"
DAGS_FOLDER.mkdir()
# dag.test() only runs DAGs it finds in the DAGs folder: link the example DAGs and test DAGs.
for source in [
    *sorted((REPO / "example_dags").glob("*.py")),
    *sorted((REPO / "tests" / "dag_files").glob("*.py")),
]:
    (DAGS_FOLDER / source.name).symlink_to(source)

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ.pop("AIRFLOW_CONN_IOTDA_DEFAULT", None)

# Credentials used throughout the tests; the SK is recognisable so leak checks can grep for it.
TEST_AK = "TESTACCESSKEY0000001"
TEST_SK = "TESTSECRETKEY-do-not-leak-9f3a1c"
TEST_TOKEN = "TESTSECURITYTOKEN-do-not-leak-77aa"
TEST_PROJECT = "0123456789abcdef0123456789abcdef"
TEST_INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"
TEST_ENDPOINT = "https://iotda-mgmt.cn-north-4.myhuaweicloud.com"


def connection_json(**extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` JSON value for a ``huaweicloud_iotda`` connection."""
    extras: dict[str, object] = {
        "region": "cn-north-4",
        "project_id": TEST_PROJECT,
        "instance_id": TEST_INSTANCE,
        "max_retries": 3,
    }
    extras.update(extra)
    extras = {k: v for k, v in extras.items() if v is not None}
    return json.dumps(
        {"conn_type": "huaweicloud_iotda", "login": TEST_AK, "password": TEST_SK, "extra": extras}
    )


@pytest.fixture
def iotda_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``iotda_default`` at the (requests-mocked) regional endpoint; returns that URL."""
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json())
    return TEST_ENDPOINT


@pytest.fixture(autouse=True)
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries wait for real in production; tests record the waits instead of sleeping."""
    from airflow_provider_iotda import retry

    waits: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(retry, "_sleep", waits.append)
    monkeypatch.setattr(retry, "_async_sleep", fake_async_sleep)
    return waits


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """Migrate the temporary sqlite metadata DB once (about 3 s) for DAG-level tests."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    yield _HOME
