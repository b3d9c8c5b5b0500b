"""Many concurrent connections at once (the planned benchmark polls with 1,000)."""

from __future__ import annotations

import asyncio
import resource
from urllib.parse import urlsplit

from airflow_provider_iotda.simulator import IoTDASimulator

from .sim_helpers import INSTANCE_1, TOKEN, tasks_url

# 1,000 like the benchmark, unless the open-files limit (client and server share this process,
# two descriptors per connection) does not allow that many.
CLIENTS = min(1000, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200) // 2)


async def _poll_concurrently(url: str, clients: int) -> list[bytes]:
    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nX-Auth-Token: {TOKEN}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    connected = 0
    all_connected = asyncio.Event()

    async def one() -> bytes:
        nonlocal connected
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        connected += 1
        if connected == clients:
            all_connected.set()
        await all_connected.wait()  # every connection is open before any request is sent
        writer.write(request)
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        return answer.split(b"\r\n", 1)[0]

    return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(clients))), 30)


def test_a_thousand_concurrent_connections(sim: IoTDASimulator) -> None:
    status_lines = asyncio.run(_poll_concurrently(tasks_url(sim, INSTANCE_1), CLIENTS))
    assert status_lines == [b"HTTP/1.1 200 OK"] * CLIENTS
    counters = sim.counters
    assert counters.requests == CLIENTS
    assert counters.connections == CLIENTS
    assert counters.connections_peak == CLIENTS  # all were open at once
