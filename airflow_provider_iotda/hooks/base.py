"""``IoTDABaseHook``: what the sync and async hooks share (no HTTP client is imported here)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_iotda import validation
from airflow_provider_iotda.clock import ClockOffset
from airflow_provider_iotda.config import CONN_TYPE, DEFAULT_CONN_ID, IoTDAConnectionConfig
from airflow_provider_iotda.retry import RetryPolicy

if TYPE_CHECKING:
    from airflow_provider_iotda.credentials import SourcedCredentials


class IoTDABaseHook(BaseHook):
    """Connection ID, retry policy and connection checks common to both IoTDA hooks.

    :param iotda_conn_id: connection of type ``huaweicloud_iotda`` (login = AK, password = SK,
        extras ``region``, ``project_id``, ``endpoint``, ``instance_id``, ...).
    :param retry_policy: override the retries (default: the connection's ``max_retries``,
        exponential backoff with jitter, ``Retry-After`` honoured).
    :param config: an already validated connection (``IoTDAConnectionConfig``); the hook then
        does not read the connection again (e.g. one config shared by many worker threads).
    """

    conn_name_attr = "iotda_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Huawei Cloud IoTDA"

    def __init__(
        self,
        iotda_conn_id: str = DEFAULT_CONN_ID,
        *,
        retry_policy: RetryPolicy | None = None,
        config: IoTDAConnectionConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.iotda_conn_id = validation.conn_id(iotda_conn_id, "iotda_conn_id")
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise ValueError(
                f"retry_policy must be a RetryPolicy or None; got {type(retry_policy).__name__}"
            )
        if config is not None and not isinstance(config, IoTDAConnectionConfig):
            raise ValueError(
                f"config must be an IoTDAConnectionConfig or None; got {type(config).__name__}"
            )
        self._retry_policy = retry_policy
        self._given_config = config

    def __repr__(self) -> str:
        return f"{type(self).__name__}(iotda_conn_id={self.iotda_conn_id!r})"

    @cached_property
    def clock(self) -> ClockOffset:
        """This hook's clock-skew correction (the async hook shares one per loop instead)."""
        return ClockOffset()

    @staticmethod
    def _source_note(sourced: SourcedCredentials | None) -> str:
        """`` (credentials from env)`` for test_connection's messages."""
        return f" (credentials from {sourced.source})" if sourced is not None else ""

    def _policy_for(self, config: IoTDAConnectionConfig) -> RetryPolicy:
        """The policy given to the hook, else one with the connection's ``max_retries``."""
        return self._retry_policy or RetryPolicy(max_retries=config.max_retries)

    def _warn_if_unverified(self, config: IoTDAConnectionConfig) -> None:
        """Log, every time a hook loads such a connection, that TLS is not verified."""
        if not config.verify:
            self.log.warning(
                "Connection %r has verify=false: TLS certificates of %s are NOT checked. "
                "Use this only for a private endpoint you trust.",
                self.iotda_conn_id,
                config.endpoint,
            )
