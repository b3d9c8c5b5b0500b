"""Values shared by the whole test suite (import as ``from iotda_test_values import ...``).

The SK and token are recognisable so that leak checks can search for them.
"""

from __future__ import annotations

import json

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
