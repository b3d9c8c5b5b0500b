"""Test-wide set-up: an isolated Airflow (temporary AIRFLOW_HOME, sqlite) and shared fixtures.

The environment is set before anything imports Airflow, so no test touches ``~/airflow`` and
tests do not depend on each other's order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="iotda-test-airflow-home-"))
DAGS_FOLDER = _HOME / "dags"
DAGS_FOLDER.mkdir()
# dag.test() only runs DAGs it finds in the DAGs folder: link the example DAGs and test DAGs.
for source in [
    *sorted((REPO / "example_dags").glob("*.py")),
    *sorted((REPO / "tests" / "system" / "dag_files").glob("*.py")),
]:
    (DAGS_FOLDER / source.name).symlink_to(source)

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ.pop("AIRFLOW_CONN_IOTDA_DEFAULT", None)

# Property tests draw the same examples on every run (no example database, no randomness
# between runs): a failure is reproducible, and CI does not depend on luck.
from hypothesis import settings  # noqa: E402

settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")

# Shared values live in a module with a unique name: ``from conftest import ...`` is ambiguous
# once test folders have conftest.py files of their own.
from iotda_test_values import TEST_ENDPOINT, connection_json  # noqa: E402


@pytest.fixture
def iotda_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``iotda_default`` at the (requests-mocked) regional endpoint; returns that URL."""
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json())
    return TEST_ENDPOINT


@pytest.fixture
def iotda_api(monkeypatch: pytest.MonkeyPatch, iotda_conn: str) -> Any:
    """``iotda_default`` answered by a script for the async hook: set ``iotda_api.script``."""
    from iotda_async_fakes import ScriptedIoTDA

    from airflow_provider_iotda.hooks import iotda_async

    api = ScriptedIoTDA()
    monkeypatch.setattr(iotda_async, "_new_client", api.new_client)
    return api


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
def airflow_db() -> Path:
    """Migrate the temporary sqlite metadata DB once (about 3 s) for DAG-level tests."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return _HOME
