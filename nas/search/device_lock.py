"""A readers-writer lock per Ray node, so throughput is never measured on a shared device.

Training trials hold the lock *shared*, one epoch at a time; a throughput measurement takes it
*exclusive*. A waiting measurement blocks new shared holders (writer preference), so it starts
as soon as the running trials finish their current epoch and then has the node's device (GPU or
CPU cores) to itself. The lock lives in a named async actor on each node; the search driver
releases whatever a finished or stopped trial still held, so a killed trial cannot wedge it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

LOCK_PREFIX = "nas-device-lock:"


@ray.remote(num_cpus=0, max_concurrency=1000)
class DeviceLock:
    def __init__(self) -> None:
        self._shared: set[str] = set()
        self._exclusive: str | None = None
        self._waiting_exclusive = 0
        self._changed = asyncio.Condition()

    async def acquire_shared(self, holder: str) -> None:
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._exclusive is None and self._waiting_exclusive == 0
            )
            self._shared.add(holder)

    async def acquire_exclusive(self, holder: str) -> None:
        async with self._changed:
            self._waiting_exclusive += 1
            try:
                await self._changed.wait_for(lambda: self._exclusive is None and not self._shared)
            finally:
                self._waiting_exclusive -= 1
            self._exclusive = holder

    async def release(self, holder: str) -> None:
        async with self._changed:
            self._shared.discard(holder)
            if self._exclusive == holder:
                self._exclusive = None
            self._changed.notify_all()

    async def holders(self) -> dict[str, object]:
        return {"shared": sorted(self._shared), "exclusive": self._exclusive}


def node_lock() -> ray.actor.ActorHandle:
    """The lock of the node this code runs on (created on first use)."""
    node_id = ray.get_runtime_context().get_node_id()
    return DeviceLock.options(
        name=LOCK_PREFIX + node_id,
        get_if_exists=True,
        lifetime="detached",
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote()


def release_everywhere(holder: str) -> None:
    """Release ``holder`` on every node's lock (called by the driver when a trial ends)."""
    names = ray.util.list_named_actors(all_namespaces=False)
    handles = [ray.get_actor(n) for n in names if n.startswith(LOCK_PREFIX)]
    ray.get([h.release.remote(holder) for h in handles])


class DeviceLease:
    """Blocking acquire/release of the node lock for one holder (a trial)."""

    def __init__(self, holder: str):
        self.holder = holder
        self.lock = node_lock()

    def acquire_shared(self) -> None:
        ray.get(self.lock.acquire_shared.remote(self.holder))

    def acquire_exclusive(self) -> None:
        ray.get(self.lock.acquire_exclusive.remote(self.holder))

    def release(self) -> None:
        ray.get(self.lock.release.remote(self.holder))

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.acquire_shared()
        try:
            yield
        finally:
            self.release()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self.acquire_exclusive()
        try:
            yield
        finally:
            self.release()
