"""Helpers of the sensor unit tests; builders and shared values are in
``tests/iotda_test_values.py``."""

from __future__ import annotations

from typing import Any


class FakeTI:
    """Just enough of a task instance for reschedule mode."""

    def __init__(self, first_reschedule_date: Any = None) -> None:
        self.first_reschedule_date = first_reschedule_date
        self.calls = 0

    def get_first_reschedule_date(self, context: Any) -> Any:
        self.calls += 1
        return self.first_reschedule_date
