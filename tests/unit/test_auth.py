"""Request signing: the published test vectors, ``SigningAuth`` over requests, credentials."""

from __future__ import annotations

import datetime as dt
import types
from urllib.parse import urlsplit

import pytest
import requests
import requests_mock
from iotda_test_values import TASKS_URL, TEST_AK, TEST_SK, TEST_TOKEN, verify_signature

from airflow_provider_iotda import auth
from airflow_provider_iotda.auth import (
    SDK_ALGORITHM,
    V11_ALGORITHM,
    Credentials,
    expected_authorization,
    parse_authorization,
    sign_request,
    uses_derived_signing,
)
from airflow_provider_iotda.hooks.iotda import SigningAuth

# -- the vectors of DESIGN.md, section 2 ------------------------------------------------------

VECTOR_URL = "https://service.endpoint.myhuaweicloud.com/resources?size=1"
VECTOR_HEADERS = {"X-Sdk-Date": "20200608T023900Z", "TEST_UNDERSCORE": "TEST_VALUE"}
VECTOR_BODY = '{"name":"test","id":1}'
OURS_URL = (
    "https://iotda-mgmt.cn-north-4.myhuaweicloud.com/v5/iot/0123456789abcdef0123456789abcdef"
    "/iotda-instances/6b6f5c3e-1f1a-4e55-9d5a-0123456789ab/tasks"
    "?offset=0&limit=10&marker=ffffffffffffffffffffffff"
)
OURS_HEADERS = {
    "Content-Type": "application/json",
    "X-Project-Id": "0123456789abcdef0123456789abcdef",
    "X-Sdk-Date": "20240101T000000Z",
}
OURS_V11_HOST = "e447071c94.st1.iotda-app.cn-north-4.myhuaweicloud.com"


def _signature(authorization: str) -> str:
    return parse_authorization(authorization).signature


@pytest.mark.parametrize(
    ("method", "body", "signature"),
    [
        ("GET", None, "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"),
        ("POST", VECTOR_BODY, "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"),
    ],
)
def test_sdk_hmac_sha256_generic_vectors(method: str, body: str | None, signature: str) -> None:
    headers = sign_request(
        Credentials("AccessKey", "SecretKey"), method, VECTOR_URL, VECTOR_HEADERS, body
    )
    assert headers["Authorization"] == (
        f"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, Signature={signature}"
    )
    # The header with an underscore is sent but not signed; the given date is kept.
    assert headers["TEST_UNDERSCORE"] == "TEST_VALUE"
    assert headers["X-Sdk-Date"] == "20200608T023900Z"


@pytest.mark.parametrize(
    ("method", "body", "signature"),
    [
        ("GET", None, "f7dfee056692e58dede80fc80cb89bbfabf45552dd7cd8d18a0a13484455b98e"),
        ("POST", VECTOR_BODY, "8e2d91eaf9656ec5d6fab27812e2d898a35aaaa5e16ee0a0365c38527ccfb3cf"),
    ],
)
def test_v11_hmac_sha256_generic_vectors(method: str, body: str | None, signature: str) -> None:
    credentials = Credentials(
        "AccessKey", "SecretKey", algorithm=V11_ALGORITHM, region="test-region-1", service="demo"
    )
    headers = sign_request(credentials, method, VECTOR_URL, VECTOR_HEADERS, body)
    assert headers["Authorization"] == (
        "V11-HMAC-SHA256 Credential=AccessKey/20200608/test-region-1/demo, "
        f"SignedHeaders=host;x-sdk-date, Signature={signature}"
    )


def test_sdk_vector_for_our_list_call() -> None:
    headers = sign_request(Credentials("AccessKey", "SecretKey"), "GET", OURS_URL, OURS_HEADERS)
    assert headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=AccessKey, "
        "SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
        "Signature=bd632d1e4e0a698f1bf05e1edda98e3bca5a014a5969ef0d51927c61cd2455ba"
    )


def test_v11_vector_for_our_list_call_on_an_instance_host() -> None:
    credentials = Credentials(
        "AccessKey", "SecretKey", algorithm=V11_ALGORITHM, region="cn-north-4", service="iotdm"
    )
    url = OURS_URL.replace("iotda-mgmt.cn-north-4.myhuaweicloud.com", OURS_V11_HOST)
    headers = sign_request(credentials, "GET", url, OURS_HEADERS)
    assert headers["Authorization"] == (
        "V11-HMAC-SHA256 Credential=AccessKey/20240101/cn-north-4/iotdm, "
        "SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
        "Signature=20f900be754fcfb9b2b906512402f90be7ed5c477a0688e3b16cfbe6431349eb"
    )


def test_v11_service_defaults_to_iotdm() -> None:
    credentials = Credentials(
        "AccessKey", "SecretKey", algorithm=V11_ALGORITHM, region="cn-north-4"
    )
    url = OURS_URL.replace("iotda-mgmt.cn-north-4.myhuaweicloud.com", OURS_V11_HOST)
    assert _signature(sign_request(credentials, "GET", url, OURS_HEADERS)["Authorization"]) == (
        "20f900be754fcfb9b2b906512402f90be7ed5c477a0688e3b16cfbe6431349eb"
    )


def test_every_vector_verifies_server_side() -> None:
    """``expected_authorization`` (the simulator's check) accepts what the client signed."""
    for credentials in (
        Credentials("AccessKey", "SecretKey"),
        Credentials("AccessKey", "SecretKey", algorithm=V11_ALGORITHM, region="cn-north-4"),
    ):
        headers = sign_request(credentials, "GET", OURS_URL, OURS_HEADERS)
        parsed = parse_authorization(headers["Authorization"])
        parts = urlsplit(OURS_URL)
        received = {**headers, "Host": parts.netloc}
        assert (
            expected_authorization(
                parsed, "SecretKey", "GET", parts.path, parts.query, received, b""
            )
            == headers["Authorization"]
        )
        assert (
            expected_authorization(
                parsed, "WrongSecret", "GET", parts.path, parts.query, received, b""
            )
            != headers["Authorization"]
        )


# -- sign_request details ----------------------------------------------------------------------


def test_signing_is_sensitive_to_every_signed_part() -> None:
    base = sign_request(Credentials("AccessKey", "SecretKey"), "GET", OURS_URL, OURS_HEADERS)
    variants = [
        sign_request(Credentials("AccessKey", "SecretKey"), "POST", OURS_URL, OURS_HEADERS),
        sign_request(
            Credentials("AccessKey", "SecretKey"), "GET", OURS_URL.replace("10", "11"), OURS_HEADERS
        ),
        sign_request(
            Credentials("AccessKey", "SecretKey"),
            "GET",
            OURS_URL,
            {**OURS_HEADERS, "X-Project-Id": "other"},
        ),
        sign_request(Credentials("AccessKey", "OtherKey"), "GET", OURS_URL, OURS_HEADERS),
        sign_request(Credentials("AccessKey", "SecretKey"), "GET", OURS_URL, OURS_HEADERS, "x"),
    ]
    signatures = {_signature(h["Authorization"]) for h in variants}
    assert _signature(base["Authorization"]) not in signatures
    assert len(signatures) == len(variants)


def test_date_added_in_utc_basic_format() -> None:
    now = dt.datetime(2024, 5, 6, 9, 8, 7, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    headers = sign_request(Credentials(TEST_AK, TEST_SK), "GET", OURS_URL, {}, now=now)
    assert headers["X-Sdk-Date"] == "20240506T010807Z"


def test_naive_datetime_rejected_for_the_date() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        auth.format_sdk_date(dt.datetime(2024, 1, 1))


def test_host_with_non_default_port_is_signed_with_the_port() -> None:
    assert auth.host_of("http://127.0.0.1:8787/x") == "127.0.0.1:8787"
    assert auth.host_of("https://example.com:443/x") == "example.com"
    assert auth.host_of("http://example.com:80/x") == "example.com"
    assert auth.host_of("https://[::1]:8443/x") == "[::1]:8443"
    # The signature depends on the port: a verifier with another Host rejects it.
    url = "http://127.0.0.1:8787/v5/iot/p/iotda-instances/i/tasks"
    headers = sign_request(Credentials(TEST_AK, TEST_SK), "GET", url, {})
    parsed = parse_authorization(headers["Authorization"])
    assert "host" in parsed.signed_headers
    path = urlsplit(url).path
    good = expected_authorization(
        parsed, TEST_SK, "GET", path, "", {**headers, "Host": "127.0.0.1:8787"}, b""
    )
    bad = expected_authorization(
        parsed, TEST_SK, "GET", path, "", {**headers, "Host": "127.0.0.1"}, b""
    )
    assert good == headers["Authorization"] != bad


def test_security_token_sent_as_x_security_token_and_signed() -> None:
    credentials = Credentials(TEST_AK, TEST_SK, security_token=TEST_TOKEN)
    headers = sign_request(credentials, "GET", OURS_URL, OURS_HEADERS)
    assert headers["X-Security-Token"] == TEST_TOKEN
    parsed = parse_authorization(headers["Authorization"])
    assert "x-security-token" in parsed.signed_headers
    parts = urlsplit(OURS_URL)
    received = {**headers, "Host": parts.netloc}
    assert (
        expected_authorization(parsed, TEST_SK, "GET", parts.path, parts.query, received, b"")
        == headers["Authorization"]
    )
    tampered = {**received, "X-Security-Token": "another-token"}
    assert (
        expected_authorization(parsed, TEST_SK, "GET", parts.path, parts.query, tampered, b"")
        != headers["Authorization"]
    )


def test_no_security_token_header_without_a_token() -> None:
    headers = sign_request(Credentials(TEST_AK, TEST_SK), "GET", OURS_URL, OURS_HEADERS)
    assert "X-Security-Token" not in headers


def test_content_sha256_header_replaces_the_body_hash() -> None:
    credentials = Credentials("AccessKey", "SecretKey")
    given = {**VECTOR_HEADERS, "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"}
    one = sign_request(credentials, "POST", VECTOR_URL, given, "body one")
    two = sign_request(credentials, "POST", VECTOR_URL, given, "body two")
    assert one["Authorization"] == two["Authorization"]


def test_expected_authorization_needs_every_declared_header() -> None:
    headers = sign_request(Credentials(TEST_AK, TEST_SK), "GET", OURS_URL, OURS_HEADERS)
    parsed = parse_authorization(headers["Authorization"])
    with pytest.raises(ValueError, match="x-project-id"):
        expected_authorization(
            parsed, TEST_SK, "GET", "/", "", {"Host": "h", "X-Sdk-Date": "20240101T000000Z"}, b""
        )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer abc",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=zz",
        "SDK-HMAC-SHA256 Credential=AK/20240101/r/s, SignedHeaders=host, Signature=" + "a" * 64,
        "V11-HMAC-SHA256 Credential=AK/20240101, SignedHeaders=host, Signature=" + "a" * 64,
        "V11-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=" + "a" * 64,
    ],
)
def test_parse_authorization_rejects_foreign_values(value: str) -> None:
    with pytest.raises(ValueError, match="Authorization"):
        parse_authorization(value)


def test_parse_authorization_reads_both_algorithms() -> None:
    sdk = parse_authorization(
        "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=" + "0" * 64
    )
    assert (sdk.algorithm, sdk.access_key, sdk.signed_headers, sdk.info) == (
        SDK_ALGORITHM,
        "AK1",
        ["host", "x-sdk-date"],
        None,
    )
    v11 = parse_authorization(
        "V11-HMAC-SHA256 Credential=AK1/20240101/cn-north-4/iotdm, "
        "SignedHeaders=host, Signature=" + "f" * 64
    )
    assert (v11.algorithm, v11.access_key, v11.info) == (
        V11_ALGORITHM,
        "AK1",
        "20240101/cn-north-4/iotdm",
    )


# -- credentials ---------------------------------------------------------------------------------


def test_credentials_repr_hides_secret_and_token() -> None:
    credentials = Credentials(TEST_AK, TEST_SK, security_token=TEST_TOKEN)
    for text in (repr(credentials), str(credentials), repr(SigningAuth(credentials))):
        assert TEST_AK in text
        assert TEST_SK not in text
        assert TEST_TOKEN not in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"access_key": "", "secret_key": "s"}, "access_key"),
        ({"access_key": "a", "secret_key": ""}, "secret_key"),
        ({"access_key": "a", "secret_key": "s", "algorithm": "HMAC-MD5"}, "algorithm"),
        ({"access_key": "a", "secret_key": "s", "algorithm": V11_ALGORITHM}, "region"),
    ],
)
def test_credentials_validation_names_the_field(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Credentials(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "derived"),
    [
        ("iotda-mgmt.cn-north-4.myhuaweicloud.com", False),
        ("iotda-mgmt.ap-southeast-1.myhuaweicloud.com", False),
        ("IOTDA-MGMT.CN-NORTH-4.MYHUAWEICLOUD.COM", False),
        ("iam.myhuaweicloud.com", False),
        ("iotda.cn-north-4.myhuaweicloud.cn", False),
        ("iotda.cn-north-4.myhwclouds.com", False),
        ("e447071c94.st1.iotda-app.cn-north-4.myhuaweicloud.com", True),
        ("xxxx.st1.iotda-app.cn-north-4.myhuaweicloud.com", True),
        ("127.0.0.1", True),
        ("localhost", True),
        ("iotda.example.com", True),
    ],
)
def test_uses_derived_signing_for_non_regional_hosts(host: str, derived: bool) -> None:
    assert uses_derived_signing(host) is derived


# -- SigningAuth with requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        Credentials(TEST_AK, TEST_SK),
        Credentials(TEST_AK, TEST_SK, security_token=TEST_TOKEN),
        Credentials(TEST_AK, TEST_SK, algorithm=V11_ALGORITHM, region="cn-north-4"),
    ],
)
def test_signing_auth_signs_requests_made_through_requests(credentials: Credentials) -> None:
    with requests_mock.Mocker() as mock:
        mock.get(TASKS_URL, json={"tasks": []})
        mock.post(TASKS_URL, json={})
        session = requests.Session()
        session.auth = SigningAuth(credentials)
        session.get(
            TASKS_URL, params={"limit": "10", "marker": "abc"}, headers={"X-Project-Id": "p"}
        )
        session.post(TASKS_URL, json={"name": "test", "id": 1})
    assert mock.call_count == 2
    for request in mock.request_history:
        assert verify_signature(request, TEST_SK)
        value = request.headers["Authorization"]
        assert value.startswith(credentials.algorithm)
        assert request.headers["X-Sdk-Date"]
        if credentials.security_token:
            assert request.headers["X-Security-Token"] == TEST_TOKEN
        else:
            assert "X-Security-Token" not in request.headers
        assert not verify_signature(request, "not-the-secret-key")


def test_signing_auth_signs_the_port_of_a_loopback_endpoint() -> None:
    url = "http://127.0.0.1:8787/v5/iot/p/iotda-instances/i/tasks"
    with requests_mock.Mocker() as mock:
        mock.get(url, json={"tasks": []})
        requests.get(url, auth=SigningAuth(Credentials(TEST_AK, TEST_SK)), timeout=5)
    request = mock.last_request
    assert request is not None
    assert urlsplit(request.url).netloc == "127.0.0.1:8787"
    assert verify_signature(request, TEST_SK)


@pytest.fixture
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> list[dt.datetime]:
    """Make ``auth`` see a clock that moves one minute on every reading."""
    readings: list[dt.datetime] = []
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Clock:
            moment = start + dt.timedelta(minutes=len(readings))
            readings.append(moment)
            return cls.fromtimestamp(moment.timestamp(), tz)

    monkeypatch.setattr(auth, "dt", types.SimpleNamespace(datetime=Clock, UTC=dt.UTC))
    return readings


def test_retry_is_re_signed_with_a_fresh_date(
    iotda_conn: str, ticking_clock: list[dt.datetime], retry_sleeps: list[float]
) -> None:
    from airflow_provider_iotda.hooks.iotda import IoTDAHook

    with requests_mock.Mocker() as mock:
        mock.get(
            TASKS_URL,
            [
                {"status_code": 503, "json": {"error_code": "X", "error_msg": "busy"}},
                {"status_code": 200, "json": {"tasks": [], "page": {"count": 0}}},
            ],
        )
        IoTDAHook().list_instance_tasks()
    first, second = mock.request_history
    assert first.headers["X-Sdk-Date"] == "20240101T000000Z"
    assert second.headers["X-Sdk-Date"] == "20240101T000100Z"
    assert first.headers["Authorization"] != second.headers["Authorization"]
    for request in (first, second):
        assert verify_signature(request, TEST_SK)
    assert len(retry_sleeps) == 1


def test_signing_auth_drops_stale_signature_headers() -> None:
    """Re-signing a prepared request replaces the old date, token and signature."""
    credentials = Credentials(TEST_AK, TEST_SK, security_token=TEST_TOKEN)
    signer = SigningAuth(credentials)
    request = requests.Request("GET", TASKS_URL).prepare()
    request.headers.update(
        {"X-Sdk-Date": "19990101T000000Z", "Authorization": "old", "X-Security-Token": "old"}
    )
    signer(request)
    assert request.headers["X-Sdk-Date"] != "19990101T000000Z"
    assert request.headers["X-Security-Token"] == TEST_TOKEN
    assert request.headers["Authorization"].startswith("SDK-HMAC-SHA256 ")
