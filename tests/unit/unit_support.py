"""Helpers of the unit tests; the shared values are in ``tests/iotda_test_values.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

#: The example response of the API page (seed/list-instance-tasks.txt), verbatim.
API_EXAMPLE = """{
  "page" : {
    "count" : 1,
    "marker" : 1805431584415871305
  },
  "tasks" : [ {
    "task_id" : "075f413d-a3bb-4243-974d-8eb9221c2df8",
    "type" : "CREATE",
    "status" : "SUCCESS",
    "create_time" : "2020-08-19T01:52:49.493Z",
    "start_time" : "2020-08-19T01:52:49.492Z",
    "end_time" : "2020-08-19T01:52:49.492Z",
    "target_config" : null,
    "operate_window" : null
  }, {
    "task_id" : "075f413d-a3bb-4243-974d-8eb9221c1234",
    "type" : "MODIFY",
    "status" : "PENDING",
    "create_time" : "2021-08-19T01:52:49.493Z",
    "start_time" : "2021-08-19T01:52:49.492Z",
    "end_time" : "2021-08-19T01:52:49.492Z",
    "target_config" : {
      "flavor" : {
        "type" : "iotda.standard.s2",
        "size" : 2
      }
    },
    "operate_window" : {
      "start_time" : "18:00",
      "end_time" : "22:00"
    }
  } ]
}"""


@dataclass
class CapturedLogs:
    """Everything logged during a test: stdlib records and structlog events (Airflow's hooks)."""

    caplog: pytest.LogCaptureFixture
    events: list[dict[str, Any]]

    def text(self) -> str:
        """All of it as text, raw (before Airflow's masker could redact anything)."""
        return "\n".join([self.caplog.text, *(repr(event) for event in self.events)])

    def messages(self, level: str) -> list[str]:
        """Structlog events and stdlib records of ``level`` (``"warning"``...), as text."""
        found = [
            str(e["event"]) % tuple(e.get("positional_args", ()))
            for e in self.events
            if e.get("log_level") == level
        ]
        found += [
            r.getMessage() for r in self.caplog.records if r.levelname.lower() == level.lower()
        ]
        return found
