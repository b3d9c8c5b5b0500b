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


# -- schemes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/data/iotda/tasks.json",
        "file:///data/iotda/tasks.json",
        "s3://aws_default@bucket/{{ ds }}/tasks.json",
        "memory://bucket/tasks.json",  # fsspec knows it; Airflow's filesystem is checked later
        "gs://bucket/tasks.json",
        "{{ var.value.scheme }}://bucket/tasks.json",  # the scheme is known only at run time
        "{{ var.value.destination }}",
        None,
    ],
)
def test_check_scheme_lets_through_what_may_open(url: str | None) -> None:
    storage.check_scheme(url)


@pytest.mark.parametrize("url", ["obs://bucket/tasks.json", "OBS://bucket/{{ ds }}/tasks.json"])
def test_check_scheme_teaches_the_obs_route(url: str) -> None:
    with pytest.raises(ValueError) as info:
        storage.check_scheme(url, "destination")
    message = str(info.value)
    scheme = url.split(":", 1)[0]
    assert message.startswith(f"destination {url!r} uses the scheme {scheme}://, for which")
    assert "(fsspec does not know it)" in message
    assert storage.OBS_ROUTE in message
    assert "[" not in message


def test_check_scheme_lists_the_registered_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.io import fs

    monkeypatch.setattr(fs, "_register_filesystems", lambda: {"file": None, "gs": None})
    with pytest.raises(ValueError) as info:
        storage.check_scheme("nosuch://bucket/t.json", "source")
    assert str(info.value) == (
        "source 'nosuch://bucket/t.json' uses the scheme nosuch://, for which Airflow has no "
        "filesystem here (fsspec does not know it); the schemes registered here are file://, "
        "gs://; install the Airflow provider that registers the nosuch:// filesystem"
    )


def test_resolve_names_the_package_of_a_known_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.io import fs

    monkeypatch.setattr(fs, "_register_filesystems", lambda: dict(fs._BUILTIN_SCHEME_TO_FS))
    for key in [k for k in _STORE_CACHE if "s3" in k]:
        monkeypatch.delitem(_STORE_CACHE, key)
    with pytest.raises(storage.StorageUnavailableError) as info:
        storage.resolve("s3a://conn@bucket/t.json")
    message = str(info.value)
    assert "the schemes registered here are file://, local://;" in message
    assert message.endswith(
        "install apache-airflow-providers-amazon with its s3fs extra where the tasks run"
    )


def test_resolve_refuses_an_unknown_scheme_with_the_same_message() -> None:
    """The path is built inside the check: fsspec's own error never reaches the user alone."""
    with pytest.raises(storage.StorageUnavailableError) as info:
        storage.resolve("obs://bucket/t.json")
    message = str(info.value)
    assert message.startswith("destination 'obs://bucket/t.json' uses the scheme obs://")
    assert "obs" in message.split("(", 1)[1].split(")", 1)[0]  # the cause, as Airflow says it
    assert storage.OBS_ROUTE in message
