"""``storage.write_object``: the whole object or nothing new, and never the loss of an old one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io.store import _STORE_CACHE, ObjectStore
from iotda_test_values import FakeObjectStore

from airflow_provider_iotda import storage

KEY = "/bucket/iotda/tasks.jsonl"
URL = f"memory:/{KEY}"
OLD = b'{"task_id": "yesterday"}\n'


def attach(monkeypatch: pytest.MonkeyPatch, store: FakeObjectStore) -> FakeObjectStore:
    monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=store))
    return store


def test_object_stores_get_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    store = attach(monkeypatch, FakeObjectStore())
    data = b"x" * 3_000_000
    storage.write_object(ObjectStoragePath(URL), data)
    assert store.writes == [len(data)]
    assert store.cat_file(KEY) == data


@pytest.mark.parametrize("fault", ["fail_write", "fail_commit"])
def test_a_failed_write_leaves_no_new_object(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    store = attach(monkeypatch, FakeObjectStore(**{fault: True}))
    with pytest.raises(ConnectionResetError, match="connection reset"):
        storage.write_object(ObjectStoragePath(URL), b"new data" * 1000)
    assert store.store == {}


@pytest.mark.parametrize("fault", ["fail_write", "fail_commit"])
@pytest.mark.parametrize("exists_failures", [0, 1])
def test_a_failed_write_keeps_the_previous_object(
    monkeypatch: pytest.MonkeyPatch, fault: str, exists_failures: int
) -> None:
    """Even when the existence check itself fails (unknown counts as "it existed"): the clean-up
    after the failed write must not delete the object that was there."""
    store = attach(monkeypatch, FakeObjectStore())
    store.pipe_file(KEY, OLD)
    store.exists_failures = exists_failures
    setattr(store, fault, True)
    with pytest.raises(ConnectionResetError, match="connection reset"):
        storage.write_object(ObjectStoragePath(URL), b"new data" * 1000)
    assert store.exists_failures == 0  # the check was made (and failed, when asked to)
    assert store.cat_file(KEY) == OLD


def test_local_write_is_an_atomic_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renames: list[tuple[str, str]] = []
    original = os.replace

    def spy(src: str, dst: str) -> None:
        renames.append((src, dst))
        assert Path(src).read_bytes() == b"payload"  # complete before it becomes visible
        assert not Path(dst).exists()
        original(src, dst)

    monkeypatch.setattr(storage.os, "replace", spy)
    target = tmp_path / "a" / "b" / "tasks.csv"
    storage.write_object(ObjectStoragePath(f"file://{target}"), b"payload")
    ((src, dst),) = renames
    assert Path(src).parent == target.parent
    assert Path(src).name.startswith(".tasks.csv.")
    assert dst == str(target)
    assert target.read_bytes() == b"payload"


def test_a_failed_local_write_keeps_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "tasks.jsonl"
    target.write_bytes(OLD)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        storage.write_object(ObjectStoragePath(f"file://{target}"), b"new")
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["tasks.jsonl"]
