"""A headless Chromium driven over the DevTools protocol: just enough to fill in a form.

Debian's ``chromium`` (CI installs it) and ``websockets`` (in every line's lock) are all it
needs: no WebDriver, no browser download.  Pages are driven the way a person would, through
real key presses and clicks dispatched by the browser, so React sees ordinary input events.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from .api_server import free_port, stop_process_group

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)


class Page:
    """One tab: navigate, evaluate JavaScript, wait for a condition, type and click."""

    def __init__(self, socket_: ClientConnection) -> None:
        self._socket = socket_
        self._ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})  # type: ignore[no-any-return]

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """The first truthy value of ``expression``, polled every 0.2 s (an error after
        ``timeout`` seconds, with the page's text to say what was there instead)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        text = self.evaluate("document.body ? document.body.innerText : ''")
        raise TimeoutError(f"{expression!r} stayed false; the page shows:\n{str(text)[:3000]}")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element (scrolled into view), once it has
        stopped moving (an accordion that opens or closes slides what follows it)."""
        where = (
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        box, deadline = None, time.monotonic() + 10
        while time.monotonic() < deadline:
            previous, box = box, self.evaluate(where)
            if box is None:
                raise LookupError(f"no element {selector!r}")
            if box == previous:
                break
            time.sleep(0.15)
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )

    def type_into(self, selector: str, text: str, *, clear: bool = True) -> None:
        """Focus the element (a click), select what it holds, and type ``text`` key by key."""
        self.click(selector)
        if clear:
            self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
            self.send(
                "Input.dispatchKeyEvent",
                type="keyDown",
                key="Backspace",
                code="Backspace",
                windowsVirtualKeyCode=8,
            )
            self.send(
                "Input.dispatchKeyEvent",
                type="keyUp",
                key="Backspace",
                code="Backspace",
                windowsVirtualKeyCode=8,
            )
        self.send("Input.insertText", text=text)

    def select_all(self) -> None:
        """Ctrl+A in the focused element (a code editor selects its whole text)."""
        for kind in ("keyDown", "keyUp"):
            self.send(
                "Input.dispatchKeyEvent",
                type=kind,
                key="a",
                code="KeyA",
                modifiers=2,  # Ctrl
                windowsVirtualKeyCode=65,
                commands=["selectAll"] if kind == "keyDown" else [],
            )

    def paste(self, text: str) -> None:
        """Paste ``text`` into the focused element, as Ctrl+V would (a code editor takes a
        paste as is, where typed quotes and braces would be closed for us)."""
        self.evaluate(
            "(() => { const data = new DataTransfer();"
            f" data.setData('text/plain', {json.dumps(text)});"
            " document.activeElement.dispatchEvent(new ClipboardEvent('paste',"
            " {clipboardData: data, bubbles: true, cancelable: true})); })()"
        )

    def press_tab(self) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send(
                "Input.dispatchKeyEvent", type=kind, key="Tab", code="Tab", windowsVirtualKeyCode=9
            )

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))


@contextlib.contextmanager
def chromium_page(width: int = 1280, height: int = 2400) -> Iterator[Page]:
    """A headless Chromium on a free loopback port with one page; stopped afterwards."""
    if CHROMIUM is None:
        raise RuntimeError("no chromium on PATH (Debian/Ubuntu: apt-get install -y chromium)")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="iotda-chromium-")
    args = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        page_url = _page_socket_url(port, process)
        with connect(page_url, max_size=None, open_timeout=30) as socket_:
            page = Page(socket_)
            page.send("Page.enable")
            page.send("Runtime.enable")
            yield page
    finally:
        stop_process_group(process, 20)
        shutil.rmtree(profile, ignore_errors=True)


def _page_socket_url(port: int, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        try:
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        except (httpx.TransportError, ValueError):
            time.sleep(0.2)
            continue
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        time.sleep(0.2)
    raise RuntimeError("chromium did not open its DevTools port in 60 s")
