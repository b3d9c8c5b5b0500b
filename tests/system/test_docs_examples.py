"""The docs' pytest example (docs/examples/test_with_simulator.py), run in a fresh pytest as a
user's own suite runs it: the plugin loaded through ``pytest_plugins``, nothing from our
conftest files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "test_with_simulator.py"


def test_the_pytest_example_passes_in_a_fresh_suite(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow")}
    env.pop("AIRFLOW_CONN_IOTDA_DEFAULT", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
