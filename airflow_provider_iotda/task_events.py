"""What an instance-task watcher reports: news, not history, and each change once.

Pure logic, no I/O: :class:`IoTDAInstanceTaskEventTrigger
<airflow_provider_iotda.triggers.iotda.IoTDAInstanceTaskEventTrigger>` feeds it the task list
of each poll and persists the :class:`Memory` it returns.

* The first look (no memory yet) is history: tasks already in a watched status never fire.
* Afterwards a watched task fires when its status is one of ``statuses`` and differs from the
  status remembered for it; a task not remembered (created since the last look) counts as
  having had no status.  A status that stays the same never fires again, so a condition that
  stays true does not start run after run (Airflow's "Avoid infinite scheduling").
* The memory is the last status of every watched task in the latest list (tasks that left the
  list are forgotten), so it stays as small as the list itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_iotda.models import InstanceTask

#: The statuses that count as "finished" unless told otherwise.
DEFAULT_EVENT_STATUSES = ("FAILED", "SUCCESS")

#: Bumped when the remembered JSON changes shape; another version reads as "no memory".
MEMORY_VERSION = 1

# The asset state store's key column holds 512 characters.
_MAX_KEY_LENGTH = 512


@dataclass(frozen=True)
class WatchSpec:
    """Which tasks a watcher looks at (``task_types``, ``None``: all) and which statuses fire."""

    statuses: frozenset[str]
    task_types: frozenset[str] | None = None

    def watches(self, task: InstanceTask) -> bool:
        """Whether ``task`` is of a watched type."""
        return self.task_types is None or task.type in self.task_types


@dataclass(frozen=True)
class Memory:
    """The last status of every watched task listed at the latest look (task ID -> status)."""

    statuses: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, tasks: Iterable[InstanceTask], spec: WatchSpec) -> Memory:
        """What to remember after seeing ``tasks``."""
        return cls({t.task_id: t.status for t in tasks if spec.watches(t)})

    def to_json(self) -> dict[str, Any]:
        """The JSON kept in the asset state store."""
        return {"version": MEMORY_VERSION, "statuses": dict(sorted(self.statuses.items()))}

    @classmethod
    def from_json(cls, value: object) -> Memory | None:
        """Read :meth:`to_json`'s output; ``None`` for nothing stored or an unknown shape."""
        if not isinstance(value, Mapping) or value.get("version") != MEMORY_VERSION:
            return None
        statuses = value.get("statuses")
        if not isinstance(statuses, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in statuses.items()
        ):
            return None
        return cls(dict(statuses))


@dataclass(frozen=True)
class News:
    """A task that has just reached a watched status, and the status it had before (if seen)."""

    task: InstanceTask
    previous_status: str | None


@dataclass(frozen=True)
class Look:
    """The outcome of one look at the list: the news (oldest first) and what to remember."""

    news: tuple[News, ...]
    memory: Memory


def look(memory: Memory | None, tasks: Iterable[InstanceTask], spec: WatchSpec) -> Look:
    """Compare one poll's ``tasks`` with ``memory`` (``None``: the first look, all history)."""
    listed = list(tasks)
    new_memory = Memory.of(listed, spec)
    if memory is None:
        return Look((), new_memory)
    news = [
        News(task, memory.statuses.get(task.task_id))
        for task in listed
        if spec.watches(task)
        and task.status in spec.statuses
        and memory.statuses.get(task.task_id) != task.status
    ]
    news.sort(key=lambda n: _finished_order(n.task))
    return Look(tuple(news), new_memory)


def _finished_order(task: InstanceTask) -> tuple[str, str]:
    moment = task.end_time or task.create_time
    return (moment.isoformat() if moment is not None else "", task.task_id)


def event_payload(instance_id: str, news: News) -> dict[str, Any]:
    """The event's payload (an asset event's ``extra["payload"]``): JSON only."""
    return {
        "instance_id": instance_id,
        "task": news.task.to_dict(),
        "previous_status": news.previous_status,
    }


def memory_key(iotda_conn_id: str, instance_id: str, spec: WatchSpec) -> str:
    """The asset-state-store key of one watcher's memory.

    Several watchers of one asset share its store, so the key names everything that decides
    what a watcher reports (not the poll interval: changing it keeps the memory).
    """
    types = ",".join(sorted(spec.task_types)) if spec.task_types is not None else "*"
    statuses = ",".join(sorted(spec.statuses))
    key = f"iotda_instance_tasks/{iotda_conn_id}/{instance_id}/{types}/{statuses}"
    if len(key) <= _MAX_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"iotda_instance_tasks/{instance_id}/{digest}"
