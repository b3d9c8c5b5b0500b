"""Fidelity: our signatures equal those of Huawei's own SDK signer on random requests.

Needs ``huaweicloudsdkcore`` (the ``sdk-check`` extra); skipped, with the reason shown, without it.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_iotda.auth import (
    V11_ALGORITHM,
    Credentials,
    derive_v11_key,
    sign_request,
    uses_derived_signing,
)

pytestmark = pytest.mark.sdk

sdk_signer = pytest.importorskip(
    "huaweicloudsdkcore.signer.signer",
    reason="Huawei's SDK is not installed (pip install '.[sdk-check]')",
)
sdk_request = pytest.importorskip("huaweicloudsdkcore.sdk_request")
sdk_credentials = pytest.importorskip("huaweicloudsdkcore.auth.credentials")
sdk_hkdf = pytest.importorskip("huaweicloudsdkcore.signer.hkdf")

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]), st.sampled_from(":/?#[]@!$&'()*+,;=% ~")
    ),
    max_size=10,
)
segments = st.lists(text.filter(lambda s: "/" not in s), max_size=4)
pairs_strategy = st.lists(st.tuples(text, text), max_size=6)
header_names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    min_size=1,
    max_size=10,
).filter(
    lambda n: (
        n.lower()
        not in {
            "host",
            "x-sdk-date",
            "authorization",
            "x-security-token",
            "x-sdk-content-sha256",
            "content-type",
        }
    )
)
headers_strategy = st.dictionaries(
    header_names, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=16)
).map(lambda d: {k: v for k, v in d.items() if sum(n.lower() == k.lower() for n in d) == 1})
hosts = st.sampled_from(
    [
        "iotda-mgmt.cn-north-4.myhuaweicloud.com",
        "e447071c94.st1.iotda-app.cn-north-4.myhuaweicloud.com",
        "127.0.0.1:8787",
    ]
)


class _SdkCredentials:
    """The two attributes Huawei's signers read."""

    def __init__(self, ak: str, sk: str) -> None:
        self.ak = ak
        self.sk = sk


def _sdk_authorization(
    *,
    method: str,
    url: str,
    pairs: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    region: str | None,
) -> str:
    parts = urlsplit(url)
    request = sdk_request.SdkRequest(
        method=method,
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=list(pairs),
        header_params=dict(headers),
        body=body,
    )
    credentials = _SdkCredentials("AK-sdk", "SK-sdk")
    if region:
        signed = sdk_signer.DerivationAKSKSigner(credentials).sign(request, "iotdm", region)
    else:
        signed = sdk_signer.Signer(credentials).sign(request)
    return str(signed.header_params["Authorization"])


@SETTINGS
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    host=hosts,
    parts=segments,
    pairs=pairs_strategy,
    headers=headers_strategy,
    body=st.binary(max_size=48),
    now=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2099, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    region=st.sampled_from([None, "cn-north-4"]),
    token=st.sampled_from([None, "temporary-token"]),
)
def test_same_signature_as_huaweis_sdk(
    method: str,
    host: str,
    parts: list[str],
    pairs: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    now: dt.datetime,
    region: str | None,
    token: str | None,
) -> None:
    path = "/" + "/".join(quote(p, safe="") for p in parts)
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    url = f"https://{host}{path}" + (f"?{query}" if query else "")
    ours = Credentials(
        "AK-sdk",
        "SK-sdk",
        security_token=token,
        algorithm=V11_ALGORITHM if region else "SDK-HMAC-SHA256",
        region=region,
    )
    sent = sign_request(ours, method, url, headers, body, now=now)
    # The SDK gets the same headers (date, token) and adds Host from the request's host.
    given_headers = {k: v for k, v in sent.items() if k != "Authorization"}
    expected = _sdk_authorization(
        method=method, url=url, pairs=pairs, headers=given_headers, body=body, region=region
    )
    # Huawei's SDK only signs the port when the host it is given names one; so do we.
    assert sent["Authorization"] == expected


def test_published_vector_with_the_sdk() -> None:
    """Sanity check of the harness itself on DESIGN.md's first vector."""
    request = sdk_request.SdkRequest(
        method="GET",
        schema="https",
        host="service.endpoint.myhuaweicloud.com",
        resource_path="/resources",
        query_params=[("size", "1")],
        header_params={"X-Sdk-Date": "20200608T023900Z", "TEST_UNDERSCORE": "TEST_VALUE"},
        body=b"",
    )
    signed = sdk_signer.Signer(_SdkCredentials("AccessKey", "SecretKey")).sign(request)
    assert signed.header_params["Authorization"].endswith(
        "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
    )


@SETTINGS
@given(
    ak=st.text(min_size=1, max_size=40),
    sk=st.text(min_size=1, max_size=40),
    info=st.text(max_size=40),
)
def test_derived_key_same_as_huaweis_hkdf(ak: str, sk: str, info: str) -> None:
    try:
        theirs = sdk_hkdf.get_der_key_sha256(ak, sk, info)
    except UnicodeEncodeError:  # lone surrogates: neither side can encode them
        return
    assert derive_v11_key(ak, sk, info) == theirs


@SETTINGS
@given(
    host=st.from_regex(
        r"[a-z][a-z0-9-]{0,12}(\.[a-z0-9-]{1,12}){0,4}(\.(my)?(huaweicloud|myhwclouds|example)\.(com|cn|org))?",
        fullmatch=True,
    )
)
def test_derived_predicate_same_as_huaweis_sdk(host: str) -> None:
    predicate = sdk_credentials.DerivedCredentials.get_default_derived_predicate()
    request = sdk_request.SdkRequest(host=host)
    assert uses_derived_signing(host) is predicate(request)
