"""TLS: certificates are verified by default; turning that off takes an explicit connection
extra (``verify: false``) and logs a warning every time a hook is built with it.

A real HTTPS server on loopback with a self-signed certificate: the default connection refuses
it (sync and async), also when ``CURL_CA_BUNDLE``/``REQUESTS_CA_BUNDLE`` are set; only
``verify: false`` gets through, with a warning.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iotda_test_values import page_json, task_json

from airflow_provider_iotda.config import IoTDAConnectionConfig
from airflow_provider_iotda.errors import IoTDATransportError
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

pytestmark = pytest.mark.integration
WARNING = "TLS certificates of"
#: What both hooks say about the self-signed certificate (one message set, errors.py).
UNTRUSTED = (
    r"^Could not talk to IoTDA at https://127\.0\.0\.1:\d+: the TLS certificate of 127\.0\.0\.1 "
    r"was not accepted \(self-signed certificate\) \(no connection"
)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    body = json.dumps(page_json([task_json()])).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _connect(monkeypatch: pytest.MonkeyPatch, endpoint: str, **extra: Any) -> None:
    from .support import connection_json

    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(endpoint=endpoint, max_retries=0, **extra)
    )


def test_verification_is_on_unless_the_extra_says_false() -> None:
    base = {"access_key": "AK", "secret_key": "SK", "project_id": "p", "region": "cn-north-4"}
    assert IoTDAConnectionConfig.from_values(**base).verify is True
    assert IoTDAConnectionConfig.from_values(**base, verify="").verify is True
    assert IoTDAConnectionConfig.from_values(**base, verify=None).verify is True
    assert IoTDAConnectionConfig.from_values(**base, verify="true").verify is True
    assert IoTDAConnectionConfig.from_values(**base, verify=False).verify is False
    assert IoTDAConnectionConfig.from_values(**base, verify="false").verify is False
    with pytest.raises(ValueError, match="extra verify"):
        IoTDAConnectionConfig.from_values(**base, verify="nope")


@pytest.mark.parametrize(
    "env",
    [{}, {"CURL_CA_BUNDLE": ""}, {"REQUESTS_CA_BUNDLE": ""}, {"PYTHONHTTPSVERIFY": "0"}],
    ids=["plain", "CURL_CA_BUNDLE=''", "REQUESTS_CA_BUNDLE=''", "PYTHONHTTPSVERIFY=0"],
)
def test_sync_hook_refuses_an_untrusted_certificate_by_default(
    monkeypatch: pytest.MonkeyPatch, https_server: str, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _connect(monkeypatch, https_server)
    with pytest.raises(IoTDATransportError, match=UNTRUSTED) as caught:
        IoTDAHook().list_instance_tasks()
    assert caught.value.request_sent is False


def test_async_hook_refuses_an_untrusted_certificate_by_default(
    monkeypatch: pytest.MonkeyPatch, https_server: str
) -> None:
    _connect(monkeypatch, https_server)

    async def call() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await hook.list_instance_tasks()

    with pytest.raises(IoTDATransportError, match=UNTRUSTED) as caught:
        asyncio.run(call())
    assert caught.value.request_sent is False


def test_verify_false_gets_through_and_warns_for_every_hook(
    monkeypatch: pytest.MonkeyPatch, https_server: str, capfd: pytest.CaptureFixture[str]
) -> None:
    _connect(monkeypatch, https_server, verify="false")
    # A CA bundle in the environment must not switch verification back on (or off) silently.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    capfd.readouterr()
    for _ in range(3):
        with IoTDAHook() as hook:
            assert [t.task_id for t in hook.list_instance_tasks().tasks] == [task_json()["task_id"]]

    async def call() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await hook.list_instance_tasks()

    assert len(asyncio.run(call()).tasks) == 1
    out, err = capfd.readouterr()
    warnings = [line for line in (out + err).splitlines() if WARNING in line]
    assert len(warnings) == 4, warnings  # three sync hooks and one async hook
    assert all("verify=false" in line and https_server in line for line in warnings)


def test_no_warning_when_verification_is_on(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    _connect(monkeypatch, "https://iotda-mgmt.cn-north-4.myhuaweicloud.com")
    capfd.readouterr()
    assert IoTDAHook().config.verify is True
    out, err = capfd.readouterr()
    assert WARNING not in out + err
