"""Helpers shared by the benchmark scripts (standard library only at import time).

Every benchmark script prints its figures for a person, then one machine-readable line
``BENCH-JSON: {...}`` that ``run_all.py`` collects into the summary table.  A result row is a
:class:`Row`: what was measured, the figure, the target and PASS / MISS / INFO / SKIP.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
JSON_PREFIX = "BENCH-JSON: "
SDK_SKIP = "skipped: install .[sdk-check]"

# Credentials the benchmark simulators accept (not real secrets).
AK = "BENCHACCESSKEY000001"
SK = "BENCHSECRETKEY-not-a-real-secret-5e1f"
PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "cn-north-4"


@dataclass
class Row:
    """One line of the summary table."""

    bench: str
    metric: str
    value: str
    target: str = ""
    status: str = "INFO"  # PASS, MISS, INFO or SKIP
    note: str = ""


@dataclass
class Report:
    """What one benchmark script hands to ``run_all.py``."""

    bench: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        metric: str,
        value: str,
        target: str = "",
        status: str = "INFO",
        note: str = "",
    ) -> Row:
        row = Row(self.bench, metric, value, target, status, note)
        self.rows.append(row)
        return row

    def check(self, metric: str, value: str, target: str, ok: bool, note: str = "") -> Row:
        return self.add(metric, value, target, "PASS" if ok else "MISS", note)

    def emit(self) -> None:
        """Print the rows for a person, then the ``BENCH-JSON`` line."""
        print()
        print(format_table(self.rows, markdown=False))
        payload: dict[str, Any] = {"bench": self.bench, "rows": [asdict(r) for r in self.rows]}
        payload["details"] = self.details
        print(JSON_PREFIX + json.dumps(payload, default=str), flush=True)


def format_table(rows: Sequence[Row], *, markdown: bool, with_bench: bool = True) -> str:
    """The rows as an aligned text table or as a Markdown table."""
    header = ["benchmark", "figure", "measured", "target", "result"]
    body = [[r.bench, r.metric, r.value, r.target or "-", r.status] for r in rows]
    if not with_bench:
        header, body = header[1:], [line[1:] for line in body]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body, strict=False)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in body]
    return "\n".join(out)


# -- numbers --------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def spread(values: Sequence[float]) -> str:
    """``min..max`` of a sample, for noise notes."""
    return f"{min(values):.1f}..{max(values):.1f}"


def proc_status_kb(field_name: str, pid: int | str = "self") -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS`` now, ``VmHWM`` peak)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def rss_kb() -> int:
    """Resident set size now (kB)."""
    return proc_status_kb("VmRSS")


def peak_rss_kb() -> int:
    """Peak resident set size of this process (kB)."""
    return proc_status_kb("VmHWM")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (from ``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others while this VM wanted it (all cores, s)."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = handle.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def open_sockets() -> int:
    """Sockets this process holds open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def load_note() -> str:
    """1-minute load average and core count, to judge noise."""
    one, five, _ = os.getloadavg()
    return f"load avg {one:.2f} (1 min) / {five:.2f} (5 min) on {os.cpu_count()} cores"


def sdk_available() -> bool:
    """Whether Huawei's SDK (the ``sdk-check`` extra) is importable (``IOTDA_BENCH_NO_SDK=1``
    pretends it is not, to check the skipped rows)."""
    import importlib.util

    if os.environ.get("IOTDA_BENCH_NO_SDK") == "1":
        return False

    return all(
        importlib.util.find_spec(name) is not None
        for name in ("huaweicloudsdkcore", "huaweicloudsdkiotdm")
    )


# -- Airflow environment -------------------------------------------------------------------


def isolate_airflow_home() -> Path:
    """Point Airflow at a throw-away home (unless run_all.py already did) before it is imported."""
    home = os.environ.get("IOTDA_BENCH_AIRFLOW_HOME")
    if home is None:
        home = tempfile.mkdtemp(prefix="iotda-bench-airflow-")
        os.environ["IOTDA_BENCH_AIRFLOW_HOME"] = home
    os.environ["AIRFLOW_HOME"] = home
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(home) / "dags"))
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    return Path(home)


def connection_json(url: str, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_*`` value pointing a ``huaweicloud_iotda`` connection at ``url``."""
    extras: dict[str, Any] = {"endpoint": url, "project_id": PROJECT, "max_retries": 3}
    extras.update(extra)
    return json.dumps(
        {"conn_type": "huaweicloud_iotda", "login": AK, "password": SK, "extra": extras}
    )


def instance_id(n: int) -> str:
    """A valid, recognisable instance ID for number ``n``."""
    return f"be{n:06x}-0000-4000-8000-{n:012x}"


def task_id(instance: int, n: int) -> str:
    """A valid task ID; larger ``n`` sorts later (IoTDA lists by descending ID)."""
    return f"{instance:08x}-{n:04x}-4000-9000-{instance * 1000 + n:012x}"


def quiet_logging(path: Path | None = None) -> Path:
    """Send Airflow's log lines (operators and triggers log a line per call) to a file.

    The lines are still rendered and written, as a worker or triggerer writes them; they only
    stay out of the benchmark's report.  Returns the file's path.
    """
    target = path or Path(tempfile.mkdtemp(prefix="iotda-bench-log-")) / "bench.log"
    handle = open(target, "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    from airflow.sdk.log import configure_logging

    configure_logging(output=handle, colored_console_log=False)
    return target


# -- the simulator in another process -------------------------------------------------------


class SimProcess:
    """``python -m airflow_provider_iotda.simulator`` in a child process, with its control API.

    Started with :meth:`start` (or as a context manager); the child is stopped with SIGTERM
    (then SIGKILL) by its own PID.
    """

    def __init__(
        self,
        *,
        scenario: Path | None = None,
        latency_ms: float = 0.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.args = [
            PYTHON,
            "-m",
            "airflow_provider_iotda.simulator",
            "--port",
            "0",
            "--ak",
            AK,
            "--project-id",
            PROJECT,
            "--region",
            REGION,
            "--seed",
            "1",
        ]
        if scenario is not None:
            self.args += ["--scenario", str(scenario)]
        if latency_ms:
            self.args += ["--latency-ms", str(latency_ms)]
        self.args += list(extra_args)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> SimProcess:
        env = dict(os.environ, IOTDA_SIMULATOR_SK=SK)
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r} {err[-2000:]}")
        self.url = line
        while time.monotonic() < deadline:
            try:
                self.get("/_sim/health")
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("simulator did not answer /_sim/health")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def post(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback simulator
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/_sim/stats")
        return result

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def scenario_file(data: dict[str, Any]) -> Iterator[Path]:
    """Write a scenario to a temporary JSON file."""
    with tempfile.TemporaryDirectory(prefix="iotda-bench-") as folder:
        path = Path(folder) / "scenario.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        yield path


def common_args(description: str) -> Any:
    """The options every benchmark script takes."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: smaller and shorter (< 1 min in all)"
    )
    return parser
