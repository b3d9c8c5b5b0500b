"""A local, real-HTTP simulator of Huawei Cloud IoTDA's instance-task API.

Start it from Python (``with IoTDASimulator(ak=..., sk=..., project_id=...) as sim``), from the
command line (``python -m airflow_provider_iotda.simulator``) or through the pytest fixture in
:mod:`airflow_provider_iotda.simulator.pytest_plugin`.  See ``docs/simulator.md``.

Importing this package is cheap: starlette and uvicorn, which the server needs (the ``simulator``
extra: ``pip install "airflow-provider-iotda[simulator]"``), are imported only when one starts.
"""

from __future__ import annotations

from airflow_provider_iotda.simulator.faults import FAULT_KINDS, FaultConfig, FaultConfigError
from airflow_provider_iotda.simulator.scenario import (
    DEMO_SCENARIO_PATH,
    InstanceSpec,
    Scenario,
    ScenarioError,
    TaskSpec,
    TimelineEntry,
)
from airflow_provider_iotda.simulator.server import IoTDASimulator
from airflow_provider_iotda.simulator.state import Counters, SimulatorState

__all__ = [
    "DEMO_SCENARIO_PATH",
    "FAULT_KINDS",
    "Counters",
    "FaultConfig",
    "FaultConfigError",
    "InstanceSpec",
    "IoTDASimulator",
    "Scenario",
    "ScenarioError",
    "SimulatorState",
    "TaskSpec",
    "TimelineEntry",
]
