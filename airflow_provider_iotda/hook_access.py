"""``IoTDAHookMixin``: how the sensor and the operators hold their sync hook.

Kept out of :mod:`airflow_provider_iotda.hooks` so that importing a sensor or operator module
(every DAG parse) does not import the hooks (requests, the credentials sources); the hook is
imported when a task first uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_iotda.hooks.iotda import IoTDAHook


class IoTDAHookMixin:
    """The sync hook of an operator or sensor: one per task execution (one HTTP session, so
    poke mode reuses connections), built on first use and closed by :meth:`_close_hook` when the
    execution ends.  The class using it has an ``iotda_conn_id`` (rendered by then)."""

    iotda_conn_id: str
    _hook: IoTDAHook | None = None

    @property
    def hook(self) -> IoTDAHook:
        """This execution's hook."""
        if self._hook is None:
            from airflow_provider_iotda.hooks.iotda import IoTDAHook

            self._hook = IoTDAHook(self.iotda_conn_id)
        return self._hook

    def _close_hook(self) -> None:
        if self._hook is not None:
            self._hook.close()
            self._hook = None
