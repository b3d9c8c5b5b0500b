"""Benchmark 5: cost of signing a request, ours against Huawei's SDK signer.

The same ~1,000 list-tasks requests (different instances, offsets, limits, markers; the headers
our hook sends; a fixed ``X-Sdk-Date``) are signed by
:func:`airflow_provider_iotda.auth.sign_request` and by ``huaweicloudsdkcore``'s ``Signer``
(SDK-HMAC-SHA256) and ``DerivationAKSKSigner`` (V11-HMAC-SHA256).  Ours starts from the URL
string (it parses it); the SDK's signer is given ready-made ``SdkRequest`` objects (built
outside the timed loop, since signing mutates them), so the comparison favours the SDK.  The
time to build the ``SdkRequest`` objects is shown too.  Both must produce the same
``Authorization`` header for every request.

Run: ``.venv/bin/python benchmarks/bench_signing.py [--quick]``
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import benchlib
from benchlib import Report, median

from airflow_provider_iotda import api
from airflow_provider_iotda.auth import V11_ALGORITHM, Credentials, sign_request

DATE = "20240101T000000Z"
REGIONAL = "https://iotda-mgmt.cn-north-4.myhuaweicloud.com"
INSTANCE_HOST = "https://e447071c94.st1.iotda-app.cn-north-4.myhuaweicloud.com"


def build_requests(count: int, endpoint: str) -> list[tuple[str, dict[str, str]]]:
    """``count`` (url, headers) pairs as the hooks send them."""
    rng = random.Random(8)
    out = []
    for n in range(count):
        marker = benchlib.task_id(n, rng.randrange(1000)) if n % 3 == 0 else None
        url = api.tasks_url(
            endpoint,
            benchlib.PROJECT,
            benchlib.instance_id(rng.randrange(10_000)),
            offset=rng.choice([None, 0, rng.randrange(500)]),
            limit=rng.choice([None, 10, 100, 500]),
            marker=marker,
        )
        headers = {**api.base_headers(benchlib.PROJECT), "X-Sdk-Date": DATE}
        out.append((url, headers))
    return out


def sdk_request(url: str, headers: dict[str, str]) -> Any:
    from urllib.parse import parse_qsl

    from huaweicloudsdkcore.sdk_request import SdkRequest

    parts = urlsplit(url)
    return SdkRequest(
        method="GET",
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=parse_qsl(parts.query, keep_blank_values=True),
        header_params=dict(headers),
        body=b"",
    )


class _SdkCredentials:
    """The two attributes Huawei's signers read."""

    def __init__(self, ak: str, sk: str) -> None:
        self.ak = ak
        self.sk = sk


def per_request_us(run: Callable[[], object], count: int) -> float:
    gc.collect()
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) / count * 1e6


def compare(
    report: Report, label: str, endpoint: str, ours: Credentials, count: int, repeats: int
) -> None:
    requests = build_requests(count, endpoint)

    def run_ours() -> list[str]:
        return [
            sign_request(ours, "GET", url, headers)["Authorization"] for url, headers in requests
        ]

    have_sdk = benchlib.sdk_available()
    sign: Callable[[Any], Any] | None = None
    if have_sdk:
        from huaweicloudsdkcore.signer.signer import DerivationAKSKSigner, Signer

        credentials = _SdkCredentials(ours.access_key, ours.secret_key)
        if ours.algorithm == V11_ALGORITHM:
            derived = DerivationAKSKSigner(credentials)

            def sign(request: Any) -> Any:
                return derived.sign(request, ours.service, ours.region)
        else:
            plain = Signer(credentials)

            def sign(request: Any) -> Any:
                return plain.sign(request)

    # Interleaved repeats (ours, then the SDK's), so that machine noise hits both alike; the
    # figure is the fastest repeat of each (the least disturbed one), the median is kept too.
    ours_us: list[float] = []
    sdk_us: list[float] = []
    build_us: list[float] = []
    for _ in range(repeats):
        ours_us.append(per_request_us(run_ours, count))
        if sign is None:
            continue
        started = time.perf_counter()
        batch = [sdk_request(url, headers) for url, headers in requests]
        build_us.append((time.perf_counter() - started) / count * 1e6)

        def run_sdk(batch: list[Any] = batch) -> None:
            for request in batch:
                sign(request)

        sdk_us.append(per_request_us(run_sdk, count))
    ours_value = min(ours_us)
    print(
        f"{label}: ours {ours_value:.1f} us per request (fastest of {repeats} x {count}; "
        f"median {median(ours_us):.1f})"
    )
    if sign is None:
        report.add(f"{label}: ours per request", f"{ours_value:.1f} us")
        report.add(f"{label}: vs huaweicloudsdkcore", benchlib.SDK_SKIP, status="SKIP")
        return
    sdk_value, build_value = min(sdk_us), min(build_us)
    print(
        f"{label}: huaweicloudsdkcore {sdk_value:.1f} us per request (median "
        f"{median(sdk_us):.1f}; + {build_value:.1f} us to build its SdkRequest)"
    )

    # Same signature for every request?
    mine = run_ours()
    theirs = []
    for url, headers in requests:
        request = sdk_request(url, headers)
        theirs.append(sign(request).header_params["Authorization"])
    same = sum(a == b for a, b in zip(mine, theirs, strict=True))
    print(f"{label}: identical Authorization headers: {same} of {count}")
    ratio = ours_value / sdk_value
    report.add(
        f"{label}: per signed request, ours / SDK signer",
        f"{ours_value:.1f} us / {sdk_value:.1f} us = {ratio:.2f}x",
        "ratio (no target)",
        note=f"SDK also spends {build_value:.1f} us building the SdkRequest; ours parses the URL",
    )
    report.check(
        f"{label}: identical signatures (same date)",
        f"{same}/{count}",
        f"{count}/{count}",
        same == count,
    )
    report.details[label] = {
        "ours_us": ours_us,
        "sdk_us": sdk_us,
        "sdk_build_us": build_us,
        "identical": same,
    }


def main() -> None:
    args = benchlib.common_args(__doc__ or "").parse_args()
    count = 300 if args.quick else 1000
    repeats = 3 if args.quick else 9
    report = Report("5 signing")
    print(f"Signing {count} requests, {repeats} repeats; {benchlib.load_note()}")
    compare(
        report,
        "SDK-HMAC-SHA256",
        REGIONAL,
        Credentials(benchlib.AK, benchlib.SK),
        count,
        repeats,
    )
    compare(
        report,
        "V11-HMAC-SHA256",
        INSTANCE_HOST,
        Credentials(benchlib.AK, benchlib.SK, algorithm=V11_ALGORITHM, region=benchlib.REGION),
        count,
        repeats,
    )
    report.emit()


if __name__ == "__main__":
    main()
