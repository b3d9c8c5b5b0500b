"""A private PostgreSQL cluster for the tests: ``initdb`` into a temporary directory, ``pg_ctl``
on 127.0.0.1 and a free port, its socket in that directory; nothing outside it.

PostgreSQL refuses to run as root: as root the cluster runs as ``nobody`` (``runuser``), the
directory handed to that user.  Debian's ``postgresql`` package provides the programs (in
``/usr/lib/postgresql/<version>/bin`` when they are not on PATH).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_program(name: str) -> str | None:
    """``initdb`` / ``pg_ctl`` on PATH, else in Debian's versioned directory (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """``start()`` / ``stop()`` one cluster; ``port``, ``user`` for connections (trust auth)."""

    user = "postgres"

    def __init__(self) -> None:
        initdb, pg_ctl = find_program("initdb"), find_program("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise FileNotFoundError("initdb/pg_ctl not found: apt-get install -y postgresql")
        self._initdb, self._pg_ctl = initdb, pg_ctl
        self.base = Path(tempfile.mkdtemp(prefix="iotda-test-postgres-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "nobody", "--"] if self._as_root else []
        subprocess.run(
            [*prefix, *cmd],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.base,
        )

    def start(self) -> PrivateCluster:
        if self._as_root:
            self.base.chmod(0o755)
            shutil.chown(self.base, "nobody")
        self._run(
            self._initdb,
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = f"-k {self.base} -h 127.0.0.1 -p {self.port} -F"
        self._run(
            self._pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w",
            "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        try:
            self._run(self._pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        path = self.base / "log"
        return path.read_text(errors="replace") if path.exists() else ""
