"""Benchmark 1: DAG-parse cost of importing the sensor and operator modules.

Each sample is a fresh ``python -c`` process that imports ``airflow.sdk`` and then (depending on
the variant) more modules, timing each step with ``perf_counter`` and reading ``VmRSS`` around
it.  The figure is the in-process difference (what the extra import adds once ``airflow.sdk`` is
loaded), as a median over several processes; variants run interleaved so that machine noise
hits them alike.  ``python -X importtime`` then shows what the provider import costs, and the
modules it adds are checked for HTTP clients, retry libraries and web servers.

Run: ``.venv/bin/python benchmarks/bench_import.py [--quick] [--runs N]``
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import benchlib
from benchlib import Report, median, spread

PROVIDER_IMPORT = (
    "import airflow_provider_iotda.sensors.iotda; import airflow_provider_iotda.operators.iotda"
)
VARIANTS: dict[str, str] = {
    # label: statement run after ``import airflow.sdk``
    "airflow.sdk alone": "",
    "+ sensor and operator modules": PROVIDER_IMPORT,
    "+ Airflow's BaseSensorOperator/BaseOperator only": (
        "from airflow.sdk import BaseSensorOperator, BaseOperator"
    ),
    "+ huaweicloudsdkiotdm.v5 (Huawei's SDK client)": "import huaweicloudsdkiotdm.v5",
}
PROVIDER = "+ sensor and operator modules"
BASES = "+ Airflow's BaseSensorOperator/BaseOperator only"
SDK = "+ huaweicloudsdkiotdm.v5 (Huawei's SDK client)"
MUST_NOT_ADD = ("requests", "httpx", "urllib3", "tenacity", "uvicorn", "starlette", "pyarrow")
TARGET_MS = 10.0
TARGET_MB = 2.0

CHILD = r"""
import json, os, sys, threading, time
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
def sockets():
    n = 0
    for fd in os.listdir('/proc/self/fd'):
        try:
            n += os.readlink('/proc/self/fd/' + fd).startswith('socket:')
        except OSError:
            pass
    return n
t0 = time.perf_counter(); r0 = rss()
import airflow.sdk
t1 = time.perf_counter(); r1 = rss()
before = set(sys.modules); threads = threading.active_count(); socks = sockets()
t1 = time.perf_counter(); r1 = rss()
exec(STATEMENT)
t2 = time.perf_counter(); r2 = rss()
added = sorted(set(sys.modules) - before)
print(json.dumps({
    "base_ms": (t1 - t0) * 1000, "extra_ms": (t2 - t1) * 1000,
    "base_kb": r1 - r0, "extra_kb": r2 - r1, "rss_kb": r2,
    "added": added, "new_threads": threading.active_count() - threads,
    "new_sockets": sockets() - socks,
    "preloaded": [m for m in MUST_NOT_ADD if m in before],
}))
"""


def child_env(*, bytecode_cache: str) -> dict[str, str]:
    """The children's environment: byte code cached in ``bytecode_cache`` (as a deployed
    Airflow has its ``.pyc`` files), or, with ``PYTHONDONTWRITEBYTECODE``, compiled afresh."""
    env = os.environ.copy()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = bytecode_cache
    return env


ENV: dict[str, str] = {}


def run_child(statement: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    code = CHILD.replace("STATEMENT", repr(statement)).replace("MUST_NOT_ADD", repr(MUST_NOT_ADD))
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=benchlib.REPO,
        env=env or ENV,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_ms"] = (time.perf_counter() - started) * 1000
    return result


def importtime_top(
    statement: str, limit: int = 12, runs: int = 3
) -> tuple[list[tuple[int, int, str]], int]:
    """``-X importtime`` lines of the modules imported after ``airflow.sdk``, each module's
    fastest of ``runs`` processes: top by self time, and the total self time (us)."""
    code = f"import airflow.sdk, sys; sys.stderr.write('--MARK--\\n'); {statement}"
    best: dict[str, tuple[int, int, str]] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=benchlib.REPO,
            env=ENV,
        )
        tail = out.stderr.split("--MARK--", 1)[1]
        for line in tail.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(.*)$", line)
            if match:
                row = (int(match[1]), int(match[2]), match[3].rstrip())
                key = row[2].strip()
                if key not in best or row[0] < best[key][0]:
                    best[key] = row
    rows = list(best.values())
    total_self = sum(r[0] for r in rows)
    return sorted(rows, key=lambda r: -r[0])[:limit], total_self


def main() -> None:
    parser = benchlib.common_args(__doc__ or "")
    parser.add_argument("--runs", type=int, default=None, help="processes per variant (9)")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 9)
    benchlib.isolate_airflow_home()
    cache = tempfile.mkdtemp(prefix="iotda-bench-pycache-")
    ENV.update(child_env(bytecode_cache=cache))
    report = Report("1 DAG-parse cost")
    sdk = benchlib.sdk_available()
    variants = {k: v for k, v in VARIANTS.items() if sdk or k != SDK}

    print(
        f"Import cost: {runs} fresh processes per variant, interleaved, byte code cached in "
        f"{cache} (as in a deployed Airflow); {benchlib.load_note()}"
    )
    # Warm-up (byte-code caches, page cache): one process importing everything.
    run_child("; ".join(s for s in variants.values() if s))
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    for _ in range(runs):
        for label, statement in variants.items():
            samples[label].append(run_child(statement))

    print(f"\n{'variant':52} {'added ms':>10} {'(min..max)':>14} {'added MB':>9} {'total ms':>9}")
    figures: dict[str, dict[str, float]] = {}
    for label, rows in samples.items():
        extra_ms = [r["extra_ms"] for r in rows]
        extra_mb = [r["extra_kb"] / 1024 for r in rows]
        total_ms = [r["base_ms"] + r["extra_ms"] for r in rows]
        figures[label] = {
            "ms": median(extra_ms),
            "mb": median(extra_mb),
            "total_ms": median(total_ms),
            "process_ms": median(r["process_ms"] for r in rows),
            "rss_mb": median(r["rss_kb"] / 1024 for r in rows),
        }
        print(
            f"{label:52} {median(extra_ms):10.1f} {spread(extra_ms):>14} {median(extra_mb):9.2f} "
            f"{median(total_ms):9.1f}"
        )
    base = figures["airflow.sdk alone"]
    print(
        f"\n`import airflow.sdk` alone: {base['total_ms']:.0f} ms, process RSS "
        f"{base['rss_mb']:.0f} MB (whole `python -c` process: {base['process_ms']:.0f} ms)"
    )

    provider = figures[PROVIDER]
    bases = figures[BASES]
    provider_ms = [r["extra_ms"] for r in samples[PROVIDER]]
    report.check(
        "time added by importing sensor + operator (median)",
        f"{provider['ms']:.1f} ms",
        f"<= {TARGET_MS:.0f} ms",
        provider["ms"] <= TARGET_MS,
        note=f"min..max over {runs} processes {spread(provider_ms)} ms",
    )
    report.check(
        "memory added (RSS, median)",
        f"{provider['mb']:.2f} MB",
        f"<= {TARGET_MB:.0f} MB",
        provider["mb"] <= TARGET_MB,
    )
    report.add(
        "of which: Airflow's own BaseSensorOperator/BaseOperator",
        f"{bases['ms']:.1f} ms, {bases['mb']:.2f} MB",
        note="a DAG using any sensor pays this part",
    )
    report.add(
        "of which: the provider's own modules",
        f"{provider['ms'] - bases['ms']:.1f} ms, {provider['mb'] - bases['mb']:.2f} MB",
    )
    cross = provider["total_ms"] - base["total_ms"]
    print(
        f"across processes (median total with the provider minus median `airflow.sdk` alone): "
        f"{cross:.1f} ms; noisy (two independent medians of ~1 s), so not used as the figure"
    )
    # The same without any .pyc (PYTHONDONTWRITEBYTECODE=1, as in this project's dev shells).
    # Installed packages keep the .pyc files pip wrote; only this editable checkout has none.
    cold = os.environ.copy()
    cold.pop("PYTHONPYCACHEPREFIX", None)
    cold["PYTHONDONTWRITEBYTECODE"] = "1"
    cold_ms = [run_child(PROVIDER_IMPORT, cold)["extra_ms"] for _ in range(3)]
    report.add(
        "the same without .pyc files (source compiled at every import)",
        f"{median(cold_ms):.1f} ms",
        note="PYTHONDONTWRITEBYTECODE=1 and no .pyc: not a deployed set-up",
    )
    if sdk:
        theirs = figures[SDK]
        report.add(
            "Huawei's SDK client import (huaweicloudsdkiotdm.v5)",
            f"{theirs['ms']:.1f} ms, {theirs['mb']:.2f} MB",
            note=f"{theirs['ms'] / max(provider['ms'], 0.01):.1f}x our time",
        )
    else:
        report.add("Huawei's SDK client import", benchlib.SDK_SKIP, status="SKIP")

    # What the provider import adds, and whether anything heavy happens.
    added = samples[PROVIDER][0]["added"]
    base_added = set(samples[BASES][0]["added"])
    own = [m for m in added if m not in base_added]
    heavy = sorted(
        {m.split(".")[0] for m in added if m.split(".")[0] in MUST_NOT_ADD}
        | {m for m in added if ".hooks." in m or ".simulator" in m or ".triggers." in m}
    )
    print(f"\nModules newly imported by the sensor + operator import: {len(added)}")
    print(f"  beyond Airflow's own bases ({len(own)}): {', '.join(own)}")
    print(f"  check: none of {', '.join(MUST_NOT_ADD)} newly imported ... ", end="")
    print("OK" if not heavy else f"FAILED: {', '.join(heavy)}")
    preloaded = samples[PROVIDER][0]["preloaded"]
    if preloaded:
        print(f"  (already loaded by `import airflow.sdk` itself: {', '.join(preloaded)})")
    threads = max(r["new_threads"] for r in samples[PROVIDER])
    sockets = max(r["new_sockets"] for r in samples[PROVIDER])
    print(f"  check: new threads {threads}, new sockets {sockets} (no client set-up, no network)")
    report.check(
        "HTTP/retry/server modules newly imported; threads; sockets",
        f"{', '.join(heavy) or 'none'}; {threads}; {sockets}",
        "none; 0; 0",
        not heavy and threads == 0 and sockets == 0,
        note="requests, httpx, urllib3, tenacity, uvicorn, starlette, pyarrow, hooks, triggers, "
        "simulator",
    )
    report.details["figures"] = figures
    report.details["added_modules"] = added
    report.details["provider_own_modules"] = own

    top, total_self = importtime_top(PROVIDER_IMPORT)
    print(
        f"\npython -X importtime, modules imported after airflow.sdk, fastest of 3 processes "
        f"(self time total {total_self / 1000:.1f} ms; importtime inflates times), top by self "
        "time:"
    )
    for self_us, cumulative_us, name in top:
        print(f"  {self_us / 1000:7.2f} ms self {cumulative_us / 1000:8.2f} ms cumulative  {name}")
    report.details["importtime_top"] = top
    shutil.rmtree(cache, ignore_errors=True)
    report.emit()


if __name__ == "__main__":
    main()
