"""The audit rules of IoTDAInstanceTaskListOperator: ``instance_ids="all"``, the completeness
flag, Parquet, ``if_exists``, the destination resolved before fetching, content types, mapped
tasks sharing a destination, OpenLineage."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io.store import _STORE_CACHE, ObjectStore
from iotda_test_values import TEST_ENDPOINT, TEST_PROJECT, FakeObjectStore

from airflow_provider_iotda import records
from airflow_provider_iotda.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)
from airflow_provider_iotda.operators import iotda as operator_module

from .operator_fakes import (
    INSTANCE_A,
    INSTANCE_B,
    INSTANCE_C,
    FakeIoTDA,
    api_task,
    expected,
    listing,
    op,
)

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
needs_pyarrow = pytest.mark.skipif(not HAS_PYARROW, reason="needs pyarrow (the parquet extra)")

#: The audited day and "now" (a day later).
DAY_START = pendulum.datetime(2024, 5, 1, tz="UTC")
DAY_END = DAY_START.add(days=1)
NOW = DAY_END.add(hours=6)


def history(instance: str, count: int, newest: pendulum.DateTime, step_hours: float) -> list[Any]:
    """``count`` tasks, newest first, one every ``step_hours`` back from ``newest``."""
    return [
        api_task(
            f"{instance[:8]}{i:04x}",
            "MODIFY",
            "SUCCESS",
            records.api_time(newest.subtract(minutes=int(i * step_hours * 60))),
        )
        for i in range(count)
    ]


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The completeness check reads the wall clock through ``utc_now``: frozen at NOW."""
    monkeypatch.setattr(operator_module, "utc_now", lambda: NOW)


@pytest.fixture
def instances(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What ListInstances answers (``IoTDAHook.iter_instances`` faked; its paging is the
    hook's own, tested with the hook)."""
    from airflow_provider_iotda.hooks.iotda import IoTDAHook

    found: list[str] = []

    def iter_instances(self: IoTDAHook, **_: Any) -> Iterator[Any]:
        for instance_id in found:
            if instance_id == "boom":
                from airflow_provider_iotda.errors import IoTDAServerError

                raise IoTDAServerError("IoTDA answered 500 to ListInstances", status=500)
            yield SimpleNamespace(instance_id=instance_id)

    monkeypatch.setattr(IoTDAHook, "iter_instances", iter_instances, raising=False)
    return found


# -- instance_ids="all" ----------------------------------------------------------------------


class TestAllInstances:
    def test_every_instance_found_is_audited(
        self, fake_iotda: FakeIoTDA, instances: list[str], tmp_path: Path, capsys: Any
    ) -> None:
        instances.extend([INSTANCE_B, INSTANCE_A, INSTANCE_B])  # listed twice: audited once
        fake_iotda.add(INSTANCE_A, [api_task("a1")])
        fake_iotda.add(INSTANCE_B, [api_task("b1"), api_task("b0")])
        target = tmp_path / "tasks.jsonl"
        summary = op(instance_ids="all", destination=str(target), max_concurrency=2).execute({})
        assert summary["instances_found"] == [INSTANCE_B, INSTANCE_A]
        assert summary["instances"] == [INSTANCE_B, INSTANCE_A]
        assert summary["by_instance"] == {INSTANCE_B: 2, INSTANCE_A: 1}
        assert records.parse(target.read_bytes(), "jsonl") == expected(
            INSTANCE_B, [api_task("b1"), api_task("b0")]
        ) + expected(INSTANCE_A, [api_task("a1")])
        out = capsys.readouterr().out
        assert f"Found 2 instance(s) in project {TEST_PROJECT}: {INSTANCE_B}, {INSTANCE_A}" in out

    def test_discovery_through_list_instances(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        """The real hook against a requests-mock ListInstances (IDs in the order listed)."""
        assert fake_iotda.mocker is not None
        url = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances"
        pages = [[INSTANCE_C, INSTANCE_A], []]
        queries: list[dict[str, list[str]]] = []

        def answer(request: Any, context: Any) -> Any:
            queries.append(request.qs)
            ids = pages[len(queries) - 1]
            return {
                "count": 2,
                "marker": ids[-1] if ids else None,
                "instances": [{"instance_id": i, "status": "ACTIVE"} for i in ids],
            }

        fake_iotda.mocker.get(url, json=answer)
        fake_iotda.add(INSTANCE_A, [api_task("a1")])
        fake_iotda.add(INSTANCE_C, [api_task("c1")])
        summary = op(instance_ids="all", destination=str(tmp_path / "t.json")).execute({})
        assert summary["instances_found"] == [INSTANCE_C, INSTANCE_A]
        assert summary["records"] == 2
        assert len(queries) >= 1

    def test_all_from_a_template(self, fake_iotda: FakeIoTDA, instances: list[str]) -> None:
        instances.append(INSTANCE_C)
        fake_iotda.add(INSTANCE_C, [api_task("c1")])
        task = op(instance_ids="{{ params.which }}")
        task.render_template_fields({"params": {"which": "all"}})
        assert task.execute({}) == expected(INSTANCE_C, [api_task("c1")])

    def test_a_project_without_instances_writes_an_empty_file(
        self, fake_iotda: FakeIoTDA, instances: list[str], tmp_path: Path
    ) -> None:
        target = tmp_path / "tasks.csv"
        summary = op(instance_ids="all", destination=str(target)).execute({})
        assert summary["instances_found"] == []
        assert summary["empty"] is True
        assert target.read_bytes() == (",".join(records.CSV_COLUMNS) + "\r\n").encode()
        assert fake_iotda.requests == []

    def test_discovery_failure_fails_and_writes_nothing(
        self, fake_iotda: FakeIoTDA, instances: list[str], tmp_path: Path
    ) -> None:
        instances.append("boom")
        with pytest.raises(AirflowException, match="Listing the IoTDA instances of project"):
            op(instance_ids="all", destination=str(tmp_path / "t.json")).execute({})
        assert listing(tmp_path) == []
        assert fake_iotda.requests == []


# -- completeness ----------------------------------------------------------------------------


class TestCompleteness:
    def test_full_instance_newer_than_the_window_is_flagged(
        self, fake_iotda: FakeIoTDA, tmp_path: Path, capsys: Any
    ) -> None:
        # A: 20 tasks, one an hour back from NOW: the oldest is after DAY_START -> flagged.
        # B: 20 tasks, one every 3 hours: the oldest is before DAY_START -> complete.
        # C: 19 tasks only: nothing was dropped.
        fake_iotda.add(INSTANCE_A, history(INSTANCE_A, 20, NOW, 1))
        fake_iotda.add(INSTANCE_B, history(INSTANCE_B, 20, NOW, 3))
        fake_iotda.add(INSTANCE_C, history(INSTANCE_C, 19, NOW, 1))
        summary = op(
            instance_ids=[INSTANCE_A, INSTANCE_B, INSTANCE_C],
            created_after=DAY_START,
            created_before=DAY_END,
            destination=str(tmp_path / "tasks.json"),
        ).execute({})
        oldest_a = records.api_time(NOW.subtract(hours=19))
        ((flagged),) = summary["incomplete_instances"]
        assert flagged["instance_id"] == INSTANCE_A
        assert flagged["oldest_listed"] == oldest_a
        assert "lists 20 tasks" in flagged["reason"]
        out = capsys.readouterr().out
        assert "The audit may be incomplete for 1 instance(s)" in out
        assert f"{INSTANCE_A} (oldest task listed {oldest_a})" in out
        assert summary["records"] > 0  # written all the same (on_incomplete='warn')

    def test_fail_writes_nothing(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        fake_iotda.add(INSTANCE_A, history(INSTANCE_A, 20, NOW, 1))
        target = tmp_path / "tasks.json"
        with pytest.raises(AirflowFailException, match=rf"{INSTANCE_A} .*on_incomplete='fail'"):
            op(
                instance_ids=INSTANCE_A,
                created_after=DAY_START,
                destination=str(target),
                on_incomplete="fail",
            ).execute({})
        assert listing(tmp_path) == []

    def test_window_older_than_the_retention(
        self, fake_iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fake_iotda.add(INSTANCE_A, [api_task("a1", create_time=records.api_time(DAY_START))])
        task = op(instance_ids=INSTANCE_A, created_after=DAY_START, on_incomplete="fail")
        monkeypatch.setattr(operator_module, "utc_now", lambda: DAY_START.add(days=181))
        with pytest.raises(AirflowFailException, match="more than 180 days ago"):
            task.execute({})
        monkeypatch.setattr(operator_module, "utc_now", lambda: DAY_START.add(days=179))
        assert len(task.execute({})) == 1

    def test_the_oldest_counts_every_listed_task_not_only_those_kept(
        self, fake_iotda: FakeIoTDA, tmp_path: Path
    ) -> None:
        tasks = history(INSTANCE_B, 20, NOW, 3)  # the oldest is before DAY_START
        fake_iotda.add(INSTANCE_B, tasks)
        summary = op(
            instance_ids=INSTANCE_B,
            created_after=DAY_START,
            statuses="FAILED",  # keeps none of them
            destination=str(tmp_path / "t.json"),
        ).execute({})
        assert summary["records"] == 0
        assert summary["incomplete_instances"] == []


# -- Parquet ---------------------------------------------------------------------------------


@needs_pyarrow
def test_parquet_output(fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
    tasks = [
        api_task(
            "a2",
            create_time="2024-05-01T08:00:00.250Z",
            target_config={"flavor": {"type": "iotda.standard.s3", "size": 2}},
        ),
        api_task("a1", "FREEZE", "FAILED", "2024-05-01T07:00:00.000Z", status_detail="x"),
    ]
    fake_iotda.add(INSTANCE_A, tasks)
    target = tmp_path / "tasks.parquet"
    summary = op(instance_ids=INSTANCE_A, destination=f"file://{target}").execute({})
    assert summary["format"] == "parquet"
    assert summary["bytes"] == target.stat().st_size
    rows = records.parse(target.read_bytes(), "parquet")
    header, _ = records.to_csv_rows(expected(INSTANCE_A, tasks))
    assert rows == [
        {name: records.flatten(r).get(name) for name in header} for r in expected(INSTANCE_A, tasks)
    ]
    assert rows[0]["target_config.flavor.size"] == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"destination": "/data/tasks.parquet"}, "destination"),
        ({"destination": "file:///data/{{ data_interval_start | ds }}/t.parquet"}, "destination"),
        ({"destination": "/data/{{ ds }}/tasks", "output_format": "parquet"}, "output_format"),
    ],
)
def test_parquet_without_pyarrow_is_refused_when_the_dag_is_parsed(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], field: str
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an environment without it gives
    with pytest.raises(ValueError) as info:
        op(instance_ids=INSTANCE_A, **kwargs)
    assert str(info.value) == (
        f"{field} means the parquet format, which needs pyarrow, and pyarrow is not installed "
        "where this DAG is parsed: install airflow-provider-iotda with its parquet extra (it "
        "brings pyarrow) where DAGs are parsed and tasks run"
    )


def test_other_formats_do_not_need_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    op(instance_ids=INSTANCE_A, destination="/data/tasks.csv")
    op(instance_ids=INSTANCE_A, destination="/data/{{ ds }}/tasks", output_format="{{ fmt }}")


def test_parquet_without_pyarrow_fails_before_fetching(
    fake_iotda: FakeIoTDA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(output_format: str) -> None:
        raise ImportError("output_format 'parquet' needs pyarrow, which is not installed")

    monkeypatch.setattr(operator_module.records, "require_format", missing)
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    with pytest.raises(AirflowFailException, match="needs pyarrow"):
        op(instance_ids=INSTANCE_A, destination=str(tmp_path / "t.parquet")).execute({})
    assert fake_iotda.requests == []


# -- if_exists -------------------------------------------------------------------------------


class TestIfExists:
    def test_fail_refuses_before_fetching(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        fake_iotda.add(INSTANCE_A, [api_task("a1")])
        target = tmp_path / "tasks.json"
        target.write_text("yesterday's audit\n")
        with pytest.raises(AirflowFailException, match=r"exists \(if_exists='fail'\)"):
            op(instance_ids=INSTANCE_A, destination=str(target), if_exists="fail").execute({})
        assert target.read_text() == "yesterday's audit\n"
        assert fake_iotda.requests == []

    def test_skip_skips_before_fetching(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        fake_iotda.add(INSTANCE_A, [api_task("a1")])
        target = tmp_path / "tasks.json"
        target.write_text("yesterday's audit\n")
        with pytest.raises(AirflowSkipException, match=r"exists \(if_exists='skip'\)"):
            op(instance_ids=INSTANCE_A, destination=str(target), if_exists="skip").execute({})
        assert target.read_text() == "yesterday's audit\n"
        assert fake_iotda.requests == []

    @pytest.mark.parametrize("mode", ["fail", "skip", "overwrite"])
    def test_a_new_destination_is_written(
        self, fake_iotda: FakeIoTDA, tmp_path: Path, mode: str
    ) -> None:
        fake_iotda.add(INSTANCE_A, [api_task("a1")])
        target = tmp_path / "tasks.json"
        op(instance_ids=INSTANCE_A, destination=str(target), if_exists=mode).execute({})
        assert records.parse(target.read_bytes(), "json") == expected(INSTANCE_A, [api_task("a1")])

    def test_an_object_written_meanwhile_is_not_overwritten(
        self, fake_iotda: FakeIoTDA, tmp_path: Path
    ) -> None:
        """The check is repeated just before writing: the fetch may take a while."""
        target = tmp_path / "tasks.json"
        fake_iotda.add(INSTANCE_A, [api_task("a1")])
        fake_iotda.on_request = lambda _: target.write_text("another run's audit\n")
        with pytest.raises(AirflowFailException, match="not overwritten"):
            op(instance_ids=INSTANCE_A, destination=str(target), if_exists="fail").execute({})
        assert target.read_text() == "another run's audit\n"

    def test_an_unanswered_check_fails(
        self, fake_iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = FakeObjectStore(exists_failures=1)
        monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=store))
        fake_iotda.add(INSTANCE_A, [api_task("a1")])
        url = "memory://bucket/tasks.json"
        with pytest.raises(AirflowException, match=f"Could not check whether {url} exists"):
            op(instance_ids=INSTANCE_A, destination=url, if_exists="skip").execute({})
        assert fake_iotda.requests == []
        assert store.store == {}


# -- the destination's filesystem ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["obs://my-bucket/iotda/tasks.json", "obs://{{ var.value.bucket }}/{{ ds }}/tasks.json"],
)
def test_an_obs_destination_is_refused_at_parse_time_with_the_s3_route(url: str) -> None:
    with pytest.raises(ValueError) as info:
        op(instance_ids=INSTANCE_A, destination=url)
    message = str(info.value)
    assert message.startswith(f"destination {url!r} uses the scheme obs://, for which Airflow")
    assert "the schemes registered here are file://, local://" in message
    assert "s3://AWS_CONN_ID@BUCKET/KEY" in message
    assert "extra endpoint_url is the OBS endpoint" in message
    assert "[" not in message  # Airflow's CLI would eat it as markup


def test_an_unknown_scheme_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"^destination 'nosuch://b/t.json' uses the scheme"):
        op(instance_ids=INSTANCE_A, destination="nosuch://b/t.json")
    # a scheme written with a template is known only when the task runs
    op(instance_ids=INSTANCE_A, destination="{{ var.value.scheme }}://b/t.json")


@pytest.fixture
def no_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow as installed without the amazon provider: only the built-in filesystems."""
    from airflow.sdk.io import fs

    monkeypatch.setattr(fs, "_register_filesystems", lambda: dict(fs._BUILTIN_SCHEME_TO_FS))
    for key in [k for k in _STORE_CACHE if "s3" in k]:
        monkeypatch.delitem(_STORE_CACHE, key)


def test_a_scheme_without_filesystem_fails_at_once(fake_iotda: FakeIoTDA, no_s3: None) -> None:
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    url = "s3://aws_default@bucket/iotda/tasks.csv"
    with pytest.raises(AirflowFailException) as info:
        op(instance_ids=INSTANCE_A, destination=url).execute({})
    message = str(info.value)
    assert (
        f"destination {url!r} uses the scheme s3://, for which Airflow has no filesystem" in message
    )
    assert "the schemes registered here are file://, local://;" in message
    assert "install apache-airflow-providers-amazon with its s3fs extra" in message
    assert fake_iotda.requests == []


@pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.amazon") is not None,
    reason="the amazon provider is installed here (the case is simulated by the test above)",
)
def test_s3_without_the_amazon_provider(fake_iotda: FakeIoTDA) -> None:
    with pytest.raises(
        AirflowFailException, match=r"apache-airflow-providers-amazon with its s3fs"
    ):
        op(instance_ids=INSTANCE_A, destination="s3://bucket/tasks.json").execute({})
    assert fake_iotda.requests == []


# -- mapped tasks ----------------------------------------------------------------------------


class FakeXComs:
    """The XComs of one DAG run, with the task SDK's pull semantics: ``xcom_pull(task_ids=t,
    key=k)`` without ``map_indexes`` gives every map index's value in index order, the value
    itself when there is one, ``None`` when there is none."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, int, str], Any] = {}
        self.pulls = 0

    def ti(self, map_index: int, task_id: str = "dump") -> Any:
        xcoms = self

        class TI:
            def __init__(self) -> None:
                self.task_id, self.map_index = task_id, map_index

            def xcom_push(self, key: str, value: Any) -> None:
                json.dumps(value)  # XCom values must be JSON-able
                xcoms.values[(task_id, map_index, key)] = value

            def xcom_pull(self, task_ids: str, key: str) -> Any:
                xcoms.pulls += 1
                found = [
                    v for (t, _, k), v in sorted(xcoms.values.items()) if (t, k) == (task_ids, key)
                ]
                return None if not found else found[0] if len(found) == 1 else found

        return TI()

    def claim(self, map_index: int, destination: str) -> None:
        """What index ``map_index`` records before fetching."""
        self.ti(map_index).xcom_push(
            operator_module.DESTINATION_XCOM_KEY,
            {"map_index": map_index, "destination": destination},
        )


def run_index(xcoms: FakeXComs, map_index: int, **kwargs: Any) -> Any:
    return op(instance_ids=INSTANCE_A, **kwargs).execute({"ti": xcoms.ti(map_index)})  # type: ignore[arg-type]


def test_map_indexes_writing_different_destinations_do_not_warn(
    fake_iotda: FakeIoTDA, tmp_path: Path, capsys: Any
) -> None:
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    xcoms = FakeXComs()
    for index in (0, 1):
        run_index(xcoms, index, destination=str(tmp_path / f"{index}.json"), if_exists="fail")
    assert listing(tmp_path) == ["0.json", "1.json"]
    assert "writes" not in capsys.readouterr().out
    assert xcoms.values[("dump", 1, operator_module.DESTINATION_XCOM_KEY)] == {
        "map_index": 1,
        "destination": str(tmp_path / "1.json"),
    }


def test_a_later_index_writing_the_same_destination_warns_and_overwrites(
    fake_iotda: FakeIoTDA, tmp_path: Path, capsys: Any
) -> None:
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    target = tmp_path / "all.json"
    xcoms = FakeXComs()
    run_index(xcoms, 0, destination=str(target))
    assert "writes" not in capsys.readouterr().out  # the first index cannot know yet
    run_index(xcoms, 1, destination=str(target))
    out = capsys.readouterr().out
    assert f"Map index 1 of dump writes {target}, and so does map index 0 of this run" in out
    assert "{{ ti.map_index }}" in out
    assert out.count("and so does") == 1  # warned once, not again before writing
    assert listing(tmp_path) == ["all.json"]


def test_if_exists_fail_refuses_a_destination_another_index_writes_before_fetching(
    fake_iotda: FakeIoTDA, tmp_path: Path
) -> None:
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    target = tmp_path / "all.json"
    xcoms = FakeXComs()
    xcoms.claim(0, str(target))
    with pytest.raises(AirflowFailException, match=r"and so does map index 0 of this run.*'fail'"):
        run_index(xcoms, 1, destination=str(target), if_exists="fail")
    assert fake_iotda.requests == []
    assert listing(tmp_path) == []


def test_an_index_that_starts_during_the_fetch_is_found_before_writing(
    fake_iotda: FakeIoTDA, tmp_path: Path
) -> None:
    """Indexes running at once: index 1 records the same destination while index 0 fetches;
    index 0 looks again before writing and, with ``if_exists='fail'``, writes nothing."""
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    target = tmp_path / "all.json"
    xcoms = FakeXComs()
    fake_iotda.on_request = lambda _: xcoms.claim(1, str(target))
    with pytest.raises(AirflowFailException, match="and so does map index 1 of this run"):
        run_index(xcoms, 0, destination=str(target), if_exists="fail")
    assert len(fake_iotda.requests) == 1
    assert listing(tmp_path) == []


def test_several_indexes_writing_the_same_destination_are_named(
    fake_iotda: FakeIoTDA, tmp_path: Path, capsys: Any
) -> None:
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    target = tmp_path / "all.json"
    xcoms = FakeXComs()
    for index in (0, 2, 3):
        xcoms.claim(index, str(target))
    xcoms.claim(4, "/elsewhere.json")
    run_index(xcoms, 1, destination=str(target))
    out = capsys.readouterr().out
    assert f"Map index 1 of dump writes {target}, and so do map indexes 0, 2, 3 of this run" in out


def test_an_unmapped_task_records_and_pulls_nothing(fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    xcoms = FakeXComs()
    run_index(xcoms, -1, destination=str(tmp_path / "t.json"))
    assert (xcoms.values, xcoms.pulls) == ({}, 0)


def test_xcom_output_records_nothing(fake_iotda: FakeIoTDA) -> None:
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    xcoms = FakeXComs()
    assert len(run_index(xcoms, 0)) == 1
    assert (xcoms.values, xcoms.pulls) == ({}, 0)


# -- content type and OpenLineage ------------------------------------------------------------


def test_content_type_option_by_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    """The content type goes to ``open()`` under the scheme's keyword (moto checks S3's)."""
    from airflow_provider_iotda import storage

    store = FakeObjectStore()
    monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=store))
    monkeypatch.setitem(storage._CONTENT_TYPE_OPTIONS, "memory", "ContentType")
    storage.write_object(ObjectStoragePath("memory://b/k.csv"), b"x", content_type="text/csv")
    ((options),) = store.opened
    assert options["ContentType"] == "text/csv"


@pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="needs apache-airflow-providers-openlineage",
)
def test_openlineage_reports_instances_read_and_object_written(
    fake_iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FakeObjectStore()
    monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=store))
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    fake_iotda.add(INSTANCE_B, [api_task("b1")])
    task = op(instance_ids=[INSTANCE_A, INSTANCE_B], destination="memory://audit/day/tasks.json")
    task.execute({})
    lineage = task.get_openlineage_facets_on_complete(None)
    namespace = f"iotda://iotda-mgmt.cn-north-4.myhuaweicloud.com/{TEST_PROJECT}"
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (namespace, INSTANCE_A),
        (namespace, INSTANCE_B),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("memory://audit", "day/tasks.json")
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="needs apache-airflow-providers-openlineage",
)
def test_openlineage_with_xcom_output_has_no_output(fake_iotda: FakeIoTDA) -> None:
    fake_iotda.add(INSTANCE_A, [api_task("a1")])
    task = op(instance_ids=INSTANCE_A)
    task.execute({})
    lineage = task.get_openlineage_facets_on_complete(None)
    assert [d.name for d in lineage.inputs] == [INSTANCE_A]
    assert lineage.outputs == []
    json.dumps([d.namespace for d in lineage.inputs])
