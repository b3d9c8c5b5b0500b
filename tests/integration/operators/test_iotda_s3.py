"""The operator writing to S3 through the amazon provider (s3fs) and moto's server on loopback:
content types, all-or-nothing (a failed run leaves the previous object byte-identical),
``if_exists``."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.io.store import _STORE_CACHE
from unit.operators.operator_fakes import INSTANCE_A, INSTANCE_B, FakeIoTDA, api_task, expected, op

from airflow_provider_iotda import records
from airflow_provider_iotda.compat import AirflowException, AirflowFailException

MISSING = [
    name
    for name in ("moto", "s3fs", "boto3", "airflow.providers.amazon")
    if importlib.util.find_spec(name) is None
]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"needs {', '.join(MISSING)} (moto[server], apache-airflow-providers-amazon[s3fs])",
    ),
]

CONN_ID = "aws_moto"


class Bucket:
    """A fresh bucket (moto keeps its buckets per process) and a boto3 client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.name = f"iotda-audit-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=self.name)

    def url(self, key: str) -> str:
        return f"s3://{CONN_ID}@{self.name}/{key}"

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return [o["Key"] for o in listed]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    """moto's S3 on 127.0.0.1; connection ``aws_moto`` points at it; yields a fresh bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    for key in [k for k in _STORE_CACHE if "s3" in k]:
        monkeypatch.delitem(_STORE_CACHE, key)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        yield Bucket(client)
    finally:
        for key in [k for k in _STORE_CACHE if "s3" in k]:
            _STORE_CACHE.pop(key, None)
        server.stop()


@pytest.mark.parametrize("suffix", ["json", "jsonl", "csv", "parquet"])
def test_objects_get_the_content_type_of_their_format(
    fake_iotda: FakeIoTDA, s3: Bucket, suffix: str
) -> None:
    if suffix == "parquet":
        pytest.importorskip("pyarrow", reason="needs pyarrow (the parquet extra)")
    tasks = [api_task("a2"), api_task("a1", "CREATE")]
    fake_iotda.add(INSTANCE_A, tasks)
    key = f"day/tasks.{suffix}"
    summary = op(instance_ids=INSTANCE_A, destination=s3.url(key)).execute({})
    head = s3.client.head_object(Bucket=s3.name, Key=key)
    assert head["ContentType"] == records.CONTENT_TYPES[suffix]
    body = s3.read(key)
    assert len(body) == summary["bytes"]
    want = expected(INSTANCE_A, tasks)
    assert records.parse(body, suffix) == records.parse(records.serialise(want, suffix), suffix)


def test_a_failed_run_leaves_the_previous_object_byte_identical(
    fake_iotda: FakeIoTDA, s3: Bucket
) -> None:
    key = "day/tasks.jsonl"
    s3.put(key, b"yesterday\n")
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    fake_iotda.add(INSTANCE_B, [api_task("b1")])
    fake_iotda.fail[INSTANCE_B] = 403
    with pytest.raises(AirflowException, match=f"instance {INSTANCE_B}"):
        op(instance_ids=[INSTANCE_A, INSTANCE_B], destination=s3.url(key)).execute({})
    assert s3.read(key) == b"yesterday\n"
    assert s3.keys() == [key]


def test_if_exists_fail_on_s3(fake_iotda: FakeIoTDA, s3: Bucket) -> None:
    key = "day/tasks.csv"
    s3.put(key, b"kept")
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    with pytest.raises(AirflowFailException, match="not overwritten"):
        op(instance_ids=INSTANCE_A, destination=s3.url(key), if_exists="fail").execute({})
    assert fake_iotda.requests == []
    assert s3.read(key) == b"kept"
