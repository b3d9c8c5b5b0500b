"""Run every benchmark, each in its own fresh process, and print one summary table.

    .venv/bin/python benchmarks/run_all.py            # the full run (about 6 minutes on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick    # a smoke run (under a minute)
    .venv/bin/python benchmarks/run_all.py --only triggerer,signing

The figures of each benchmark are printed as it runs; the summary comes last, as a text table
and as a Markdown table ready to paste (``--markdown FILE`` also writes it to a file).  Exit
status: 0 when every benchmark ran (MISS rows included: they are findings), 1 when one crashed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import benchlib  # noqa: E402
from benchlib import JSON_PREFIX, Row, format_table  # noqa: E402

# name: (script, what it measures); run in this order (the import timing first, while the
# machine is quietest).
BENCHMARKS: dict[str, tuple[str, str]] = {
    "import": ("bench_import.py", "1. DAG-parse cost"),
    "poke": ("bench_poke.py", "2. requests per poke"),
    "triggerer": ("bench_triggerer.py", "3. triggerer capacity"),
    "fanout": ("bench_fanout.py", "4. audit fan-out"),
    "signing": ("bench_signing.py", "5. signing"),
    "shared": ("bench_shared_polls.py", "6. shared polls"),
    "parse": ("bench_parse.py", "7. answer parsing"),
}
TIMEOUT_S = 900


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_one(name: str, quick: bool) -> tuple[list[Row], float]:
    script, title = BENCHMARKS[name]
    command = [sys.executable, str(HERE / script)] + (["--quick"] if quick else [])
    print(f"\n=== {title}: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(command))}")
    sys.stdout.flush()
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=benchlib.REPO
        )
        assert proc.stdout is not None
        rows: list[Row] = []
        try:
            for line in proc.stdout:
                if line.startswith(JSON_PREFIX):
                    payload = json.loads(line[len(JSON_PREFIX) :])
                    rows = [Row(**row) for row in payload["rows"]]
                else:
                    print(line, end="", flush=True)
            code = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        elapsed = time.monotonic() - started
        if code != 0 or not rows:
            errors.seek(0)
            tail = errors.read()[-3000:]
            print(f"--- {script} exited {code}; its last error output:\n{tail}")
            rows.append(Row(title[3:], "benchmark run", f"crashed (exit {code})", "", "ERROR"))
    print(f"({title} took {elapsed:.0f} s)")
    return rows, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: smaller, < 1 min")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated benchmarks to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )

    home = tempfile.mkdtemp(prefix="iotda-bench-airflow-")
    os.environ["IOTDA_BENCH_AIRFLOW_HOME"] = home
    os.environ.pop("AIRFLOW_CONN_IOTDA_DEFAULT", None)
    started_at = dt.datetime.now(dt.UTC)
    load_before = benchlib.load_note()
    print(
        f"airflow-provider-iotda benchmarks, {started_at:%Y-%m-%d %H:%M} UTC; Python "
        f"{platform.python_version()}, apache-airflow {version('apache-airflow')}, httpx "
        f"{version('httpx')}, huaweicloudsdkcore {version('huaweicloudsdkcore')}; {load_before}"
        + ("; QUICK (smoke) run" if args.quick else "")
    )
    all_rows: list[Row] = []
    took: dict[str, float] = {}
    t0 = time.monotonic()
    for name in names:
        rows, elapsed = run_one(name, args.quick)
        all_rows.extend(rows)
        took[name] = elapsed
    total = time.monotonic() - t0

    counts = {s: sum(1 for r in all_rows if r.status == s) for s in ("PASS", "MISS", "ERROR")}
    command = ".venv/bin/python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    if args.only:
        command = f".venv/bin/python benchmarks/run_all.py --only {args.only}" + (
            " --quick" if args.quick else ""
        )
    summary = (
        f"{counts['PASS']} PASS, {counts['MISS']} MISS, {counts['ERROR']} ERROR in {total:.0f} s; "
        f"load before: {load_before}; after: {benchlib.load_note()}"
    )
    print("\n=== Summary\n")
    print(format_table(all_rows, markdown=False))
    print(f"\n{summary}")
    markdown = "\n".join(
        [
            f"Measured {started_at:%Y-%m-%d %H:%M} UTC with `{command}`"
            + (" (= `make bench`)" if not (args.only or args.quick) else "")
            + f" on "
            f"{os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}, "
            f"Airflow {version('apache-airflow')}); {summary}.",
            "",
            format_table(all_rows, markdown=True),
        ]
    )
    print("\n=== Markdown\n")
    print(markdown)
    if args.markdown is not None:
        args.markdown.write_text(markdown + "\n", encoding="utf-8")
        print(f"\n(written to {args.markdown})")
    shutil.rmtree(home, ignore_errors=True)
    return 1 if counts["ERROR"] else 0


if __name__ == "__main__":
    sys.exit(main())
