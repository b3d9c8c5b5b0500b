"""The pytest plugin, used the documented way (``pytest_plugins = [...]``) in a fresh pytest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

TEST_FILE = """
import requests

from airflow_provider_iotda.auth import Credentials
from airflow_provider_iotda.hooks.iotda import SigningAuth

pytest_plugins = ["airflow_provider_iotda.simulator.pytest_plugin"]


def test_first(iotda_simulator, iotda_simulator_config):
    cfg = iotda_simulator_config
    auth = SigningAuth(Credentials(cfg["ak"], cfg["sk"]))
    instance = iotda_simulator.state.instance_ids()[0]
    url = f"{iotda_simulator.url}/v5/iot/{cfg['project_id']}/iotda-instances/{instance}/tasks"
    assert requests.get(url, auth=auth, timeout=5).json()["page"]["count"] == 6
    iotda_simulator.set_faults(rates={"503": 1.0})
    iotda_simulator.add_task(instance, "FREEZE")


def test_second_is_reset(iotda_simulator, iotda_simulator_config):
    cfg = iotda_simulator_config
    auth = SigningAuth(Credentials(cfg["ak"], cfg["sk"]))
    instance = iotda_simulator.state.instance_ids()[0]
    url = f"{iotda_simulator.url}/v5/iot/{cfg['project_id']}/iotda-instances/{instance}/tasks"
    response = requests.get(url, auth=auth, timeout=5)
    assert response.status_code == 200
    assert response.json()["page"]["count"] == 6
    assert iotda_simulator.counters.requests == 1
"""


def test_fixture_via_pytest_plugins(tmp_path: Path) -> None:
    (tmp_path / "test_with_simulator.py").write_text(textwrap.dedent(TEST_FILE))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
