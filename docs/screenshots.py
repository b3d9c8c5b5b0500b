"""Regenerate the docs' pictures with headless Chromium (``make screenshots``).

- ``_static/audit-report.png``: the HTML report the audit example DAG writes, run with
  ``airflow dags test`` against the simulator's demo scenario;
- ``_static/connection-form.png``: Airflow's connection form for a ``huaweicloud_iotda``
  connection, as a real ``airflow api-server`` serves it (driven through Chromium's DevTools
  protocol: open the connection list, press the connection's edit button).

Everything runs in a temporary AIRFLOW_HOME (SQLite, ``airflow db migrate``); the simulator,
the api-server and Chromium are stopped on every exit path.  Needs Debian's ``chromium``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
STATIC = DOCS / "_static"
AK = "docs-screenshot-access-key"
SK = "docs-screenshot-secret-key"
PROJECT = "0123456789abcdef0123456789abcdef"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    raise SystemExit("make screenshots needs Chromium (Debian/Ubuntu: apt-get install -y chromium)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def airflow_env(home: Path) -> dict[str, str]:
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for name in ("audit_instance_tasks.py",):
        target = dags / name
        if not target.exists():
            target.symlink_to(REPO / "example_dags" / name)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "IOTDA_AUDIT_BASE": str(home / "audit"),
    }
    env.pop("AIRFLOW_CONN_IOTDA_DEFAULT", None)
    return env


def airflow(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "airflow", *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )


@contextlib.contextmanager
def process_group(command: list[str], env: dict[str, str], log: Path) -> Iterator[Any]:
    """A process in its own group, stopped (the whole group) on the way out."""
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def audit_report(env: dict[str, str], home: Path) -> Path:
    """Run the audit example DAG against the demo scenario; return the report it wrote.

    The simulator's clock stands at noon today; the run is yesterday's, so it audits the day
    before yesterday, the day of the demo's FAILED MODIFY (50 hours before the clock)."""
    from airflow_provider_iotda.simulator import DEMO_SCENARIO_PATH, IoTDASimulator

    noon = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    logical_date = noon - dt.timedelta(days=1)
    with IoTDASimulator(
        ak=AK,
        sk=SK,
        project_id=PROJECT,
        scenario=DEMO_SCENARIO_PATH,
        time_factor=0,
        start_time=noon,
        seed=7,
    ) as sim:
        connection = {
            "conn_type": "huaweicloud_iotda",
            "login": AK,
            "password": SK,
            "extra": {"endpoint": sim.url, "project_id": PROJECT},
        }
        airflow(
            {**env, "AIRFLOW_CONN_IOTDA_DEFAULT": json.dumps(connection)},
            "dags",
            "test",
            "audit_instance_tasks",
            logical_date.isoformat(),
        )
    (report,) = (home / "audit").glob("*/report.html")
    return report


def screenshot_file(page: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="iotda-chromium-") as profile:
        subprocess.run(  # noqa: S603 - our own command line
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def wait_for_api_server(url: str, process: Any, log: Path) -> str:
    """Wait for the api-server; return an all-admins token."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"airflow api-server exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            response = httpx.get(f"{url}/auth/token", timeout=5)
            if response.status_code in (200, 201):
                return str(response.json()["access_token"])
        time.sleep(0.5)
    raise SystemExit(f"airflow api-server did not start:\n{log.read_text()[-3000:]}")


class DevTools:
    """The few DevTools-protocol calls the form needs, over one page's websocket."""

    def __init__(self, socket_: Any) -> None:
        self.socket = socket_
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def click(self, x: float, y: float) -> None:
        """A real mouse click (press and release) at page coordinates."""
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1
            )

    async def wait_for(self, expression: str, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await self.evaluate(expression):
                return
            await asyncio.sleep(0.5)
        text = await self.evaluate("document.body.innerText")
        raise SystemExit(f"the page never showed {what}; it shows:\n{str(text)[:3000]}")


async def form_screenshot(url: str, token: str, png: Path, debug_port: int) -> None:
    import websockets

    targets = httpx.get(f"http://127.0.0.1:{debug_port}/json", timeout=10).json()
    page = next(t for t in targets if t["type"] == "page")
    async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
        tools = DevTools(ws)
        await tools.call("Page.enable")
        await tools.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=1700,
            deviceScaleFactor=1,
            mobile=False,
        )
        # The UI reads its token from the _token cookie (simple auth manager).
        await tools.call("Network.enable")
        await tools.call("Network.setCookie", name="_token", value=token, url=url)
        await tools.call("Page.navigate", url=f"{url}/connections")
        await tools.wait_for(
            "[...document.querySelectorAll('td')].some(td => td.innerText.trim() === "
            "'iotda_default')",
            "the connection list",
        )
        clicked = await tools.evaluate(
            "(() => { const row = [...document.querySelectorAll('tr')].find(r => "
            "[...r.querySelectorAll('td')].some(td => td.innerText.trim() === 'iotda_default'));"
            ' const button = row && row.querySelector(\'button[aria-label*="Edit" i], '
            'button[title*="Edit" i]\'); if (button) { button.click(); return true; } '
            "return false; })()"
        )
        if not clicked:
            raise SystemExit("no edit button in the connection's row")
        await tools.wait_for(
            "!!document.querySelector('[role=dialog]') && "
            "document.querySelector('[role=dialog]').innerText.includes('Access Key')",
            "the connection form",
        )
        # Open the "Extra Fields" section: region, project ID, instance ID, signing...
        where = await tools.evaluate(
            "(() => { const b = [...document.querySelectorAll('[role=dialog] button')].find("
            "b => b.innerText.trim() === 'Extra Fields'); if (!b) return null;"
            " const r = b.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];"
            " })()"
        )
        if not where:
            raise SystemExit("no 'Extra Fields' button in the connection form")
        await tools.click(*where)
        await tools.wait_for(
            "document.querySelector('[role=dialog]').innerText.includes('Project ID')",
            "the connection's extra fields",
        )
        await asyncio.sleep(2)  # the section's animation and fonts settle
        box = await tools.evaluate(
            "(() => { const r = document.querySelector('[role=dialog]').getBoundingClientRect();"
            " return [r.x, r.y, r.width, r.height]; })()"
        )
        x, y, width, height = box
        shot = await tools.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": x, "y": y, "width": width, "height": height, "scale": 1},
        )
    import base64

    png.write_bytes(base64.b64decode(shot["data"]))


def connection_form(env: dict[str, str], home: Path, png: Path) -> None:
    port, debug_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {
        **env,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": "docs-screenshot-jwt-secret-0123456789",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port)]
    with process_group(command, server_env, home / "api-server.log") as server:
        token = wait_for_api_server(url, server, home / "api-server.log")
        response = httpx.post(
            f"{url}/api/v2/connections",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "connection_id": "iotda_default",
                "conn_type": "huaweicloud_iotda",
                "login": "HPUAXXXXXXXXXXXXXXXX",
                "password": SK,
                "extra": json.dumps(
                    {
                        # The edit form shows only stored extras: credentials source first.
                        "credentials": "connection",
                        "region": "cn-north-4",
                        "project_id": PROJECT,
                        "instance_id": "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01",
                        "signing": "standard",
                        "max_retries": 3,
                    }
                ),
            },
            timeout=60,
        )
        response.raise_for_status()
        profile = home / "chromium-profile"
        browser = [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={debug_port}",
            "--window-size=1280,1700",
            "about:blank",
        ]
        with process_group(browser, env, home / "chromium.log"):
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{debug_port}/json/version", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("chromium's DevTools port never opened") from None
                    time.sleep(0.3)
            asyncio.run(form_screenshot(url, token, png, debug_port))


def main() -> int:
    STATIC.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="iotda-screenshots-") as tmp:
        home = Path(tmp)
        env = airflow_env(home)
        os.environ.update({k: env[k] for k in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER")})
        airflow(env, "db", "migrate")
        report = audit_report(env, home)
        screenshot_file(report, STATIC / "audit-report.png", 1200, 1500)
        print(f"wrote {STATIC / 'audit-report.png'} from {report.name}")
        connection_form(env, home, STATIC / "connection-form.png")
        print(f"wrote {STATIC / 'connection-form.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
