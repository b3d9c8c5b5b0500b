"""Command line: ``python -m airflow_provider_iotda.simulator --ak AK --sk SK --project-id P``.

Prints the base URL as the first line of stdout (scripts read it), then the scenario's
instances and an ``AIRFLOW_CONN_IOTDA_DEFAULT`` line to paste, with a placeholder where the
secret key goes (the simulator never prints the key it was given); then serves until
SIGINT/SIGTERM (exit 0).  Needs the ``simulator`` extra (starlette, uvicorn): without it, exits
with status 2 and one line naming ``pip install "airflow-provider-iotda[simulator]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from airflow_provider_iotda.simulator.faults import (
    FaultConfig,
    FaultConfigError,
    parse_rate_options,
)
from airflow_provider_iotda.simulator.scenario import Scenario, ScenarioError, ScenarioSource
from airflow_provider_iotda.simulator.server import (
    DEFAULT_REGION,
    IoTDASimulator,
    require_server_packages,
)

SK_ENV = "IOTDA_SIMULATOR_SK"
#: Stands where the secret key goes in the printed connection.
SECRET_KEY_PLACEHOLDER = "<your secret key>"


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_iotda.simulator",
        description="Serve a local simulator of the IoTDA instance-task API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port; 0 picks a free one (8787)")
    parser.add_argument("--ak", required=True, help="accepted access key")
    parser.add_argument(
        "--sk", default=None, help=f"accepted secret key (or set the {SK_ENV} variable)"
    )
    parser.add_argument("--project-id", required=True, help="accepted project ID")
    parser.add_argument("--region", default=DEFAULT_REGION, help="region for V11 signatures")
    parser.add_argument(
        "--token", action="append", default=[], help="accepted X-Auth-Token (repeatable)"
    )
    parser.add_argument(
        "--scenario",
        default=None,
        help="scenario JSON file, or 'demo' for the bundled demo scenario (default: empty)",
    )
    parser.add_argument(
        "--time-factor", type=float, default=1.0, help="simulated seconds per real second"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for faults and task IDs")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="fault probability per API request; KIND: 429, 500, 503, drop, slow, malformed, "
        "truncated (repeatable)",
    )
    parser.add_argument(
        "--fault-next",
        default="",
        metavar="KIND[,KIND...]",
        help="faults for the next API requests, in order ('none' = no fault)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency (ms)")
    parser.add_argument(
        "--latency-rate", type=float, default=1.0, help="share of requests with added latency"
    )
    parser.add_argument(
        "--slow-seconds", type=float, default=5.0, help="delay of a 'slow' answer (s)"
    )
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of a 429 (s)")
    parser.add_argument(
        "--max-skew", type=float, default=900.0, help="allowed X-Sdk-Date skew (s, 900)"
    )
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        help="seconds the gateway's clock is ahead of this machine's (negative: behind)",
    )
    parser.add_argument(
        "--credential-ttl",
        type=float,
        default=3600.0,
        help="lifetime of issued temporary credentials (s, 3600)",
    )
    parser.add_argument(
        "--oidc-token", action="append", default=[], help="accepted OIDC id token (repeatable)"
    )
    parser.add_argument("--pod-token", default=None, help="accepted pod identity token")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (warning)")
    return parser


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """Installed before serving: uvicorn re-raises the signal that stopped it on exit."""


def connection_json(simulator: IoTDASimulator) -> str:
    """The ``huaweicloud_iotda`` connection for this simulator as Airflow's JSON form, with
    :data:`SECRET_KEY_PLACEHOLDER` as the password."""
    from airflow_provider_iotda.config import CONN_TYPE

    return json.dumps(
        {
            "conn_type": CONN_TYPE,
            "login": simulator.auth.access_key,
            "password": SECRET_KEY_PLACEHOLDER,
            "extra": {"endpoint": simulator.url, "project_id": simulator.auth.project_id},
        }
    )


def startup_lines(simulator: IoTDASimulator) -> list[str]:
    """What the CLI prints once it listens: the URL first (scripts read that line), then the
    scenario's instances and a connection to paste.  Never the secret key or tokens."""
    from airflow_provider_iotda.config import DEFAULT_CONN_ID

    instances = simulator.state.scenario.instances
    lines = [simulator.url]
    if instances:
        lines.append(f"Instances ({len(instances)}) in project {simulator.auth.project_id}:")
        for spec in instances:
            flavor = f"{spec.flavor.get('type')} x {spec.flavor.get('size')}"
            name = spec.name or "-"
            lines.append(f"  {spec.instance_id}  {name}  {flavor}  {spec.status}")
    else:
        lines.append(
            f"No instances yet in project {simulator.auth.project_id} "
            "(--scenario demo starts with three)."
        )
    variable = f"AIRFLOW_CONN_{DEFAULT_CONN_ID.upper()}"
    lines += [
        f"Connection {DEFAULT_CONN_ID} for Airflow; replace {SECRET_KEY_PLACEHOLDER} with the "
        f"secret key given to --sk or {SK_ENV}:",
        f"export {variable}={shlex.quote(connection_json(simulator))}",
        "Serving until Ctrl+C.",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        require_server_packages()
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    secret = args.sk or os.environ.get(SK_ENV)
    if not secret:
        parser.error(f"--sk (or the {SK_ENV} environment variable) is required")
    try:
        scenario: ScenarioSource = Scenario.demo() if args.scenario == "demo" else args.scenario
        faults = FaultConfig(
            rates=parse_rate_options(args.fault),
            next_faults=tuple(kind.strip() for kind in args.fault_next.split(",") if kind.strip()),
            latency_ms=args.latency_ms,
            latency_rate=args.latency_rate,
            slow_seconds=args.slow_seconds,
            retry_after=args.retry_after,
        )
        simulator = IoTDASimulator(
            ak=args.ak,
            sk=secret,
            project_id=args.project_id,
            scenario=scenario,
            host=args.host,
            port=args.port,
            region=args.region,
            tokens=args.token,
            time_factor=args.time_factor,
            seed=args.seed,
            faults=faults,
            max_skew_seconds=args.max_skew,
            log_level=args.log_level,
            clock_offset=args.clock_offset,
            credential_ttl=args.credential_ttl,
            oidc_tokens=args.oidc_token,
            pod_token=args.pod_token,
        )
        simulator.bind()
    except (ScenarioError, FaultConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _ignore_signal)

    def ready(url: str) -> None:
        print("\n".join(startup_lines(simulator)), flush=True)

    simulator.serve_forever(on_ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
