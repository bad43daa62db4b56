"""A readers-writer lock per device of a Ray node, so throughput is never measured on a busy device.

Training trials hold their device's lock *shared*, one epoch at a time; a throughput measurement
takes it *exclusive*. A waiting measurement blocks new shared holders (writer preference), so it
starts as soon as the running trials finish their current epoch and then has the device to
itself. A trial's device is the GPU Ray assigned it (trials with fractional GPUs on one GPU share
its lock; a node's other GPUs have their own) or, for a trial without GPUs, its node's CPUs.

Lifetime. A lock is a named detached actor pinned to its node (it dies with it), shared by every
search on the cluster, so no search measures on a device another search is training on. A
search attaches to the locks its trials use through its *presence*, a tiny actor its driver
owns, which Ray kills when the driver ends, even by ``kill -9``. Every ``REAP_S`` a lock drops
the searches whose presence is gone, with whatever their trials held, and exits once no search
is attached: a long-lived cluster keeps no lock of a finished or dead search. The driver also
releases whatever a finished or failed trial still held, so a killed trial cannot wedge a lock.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

LOCK_PREFIX = "nas-device-lock:"
REAP_S = 2.0
"""How often a lock checks that its searches' drivers live."""
PING_TIMEOUT_S = 30.0
"""A presence that does not answer in this time is kept (busy, not known dead)."""
MAX_EVENTS = 10_000
OPEN_ATTEMPTS = 5


def lock_name(node_id: str, device: str) -> str:
    """``nas-device-lock:<node id>:<device>``, device ``cpu`` or ``gpu<Ray GPU id>``."""
    return f"{LOCK_PREFIX}{node_id}:{device}"


def trial_device(gpu_ids: list[str]) -> str:
    """The device whose lock a trial holds: the first GPU Ray assigned it (the one ``cuda``
    means inside the trial), else its node's CPUs."""
    return f"gpu{gpu_ids[0]}" if gpu_ids else "cpu"


@ray.remote(num_cpus=0)
class SearchPresence:
    """Alive exactly as long as its search's driver: the locks ping it."""

    def ping(self) -> bool:
        return True


@dataclass(frozen=True)
class LockUser:
    """A search as the locks know it: a key unique to one driver run, and its presence."""

    key: str
    presence: ActorHandle


def open_presence(search_name: str) -> LockUser:
    """The presence of the search this driver runs, on the driver's own node (a presence on a
    node that dies would make the locks drop a live search)."""
    node_id = ray.get_runtime_context().get_node_id()
    presence = SearchPresence.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
    ).remote()
    return LockUser(f"{search_name}:{secrets.token_hex(4)}", presence)


def close_presence(user: LockUser) -> None:
    """Detach the search from every lock (a lock no search uses exits) and end its presence."""
    for handle in _lock_handles():
        with _lock_gone_ok():
            ray.get(handle.detach.remote(user.key))
    ray.kill(user.presence)


@ray.remote(num_cpus=0, max_concurrency=1000)
class DeviceLock:
    """One device's readers-writer lock, the searches attached to it, and a log of its holds."""

    def __init__(self) -> None:
        self._users: dict[str, ActorHandle] = {}
        self._shared: dict[str, str] = {}  # holder -> its search's key
        self._exclusive: tuple[str, str] | None = None
        self._waiting_exclusive = 0
        self._changed = asyncio.Condition()
        self._events: deque[dict] = deque(maxlen=MAX_EVENTS)
        self._open: dict[str, dict] = {}
        self._reaper: asyncio.Task | None = None
        self._start_reaper()  # a lock whose creator died before attaching is collected too

    def _start_reaper(self) -> None:
        """Start checking the attached searches, from the constructor where Ray runs it in
        the actor's event loop, else from the first attach."""
        if self._reaper is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._reaper = loop.create_task(self._reap())

    async def attach(self, user: str, presence: ActorHandle) -> None:
        self._users[user] = presence
        self._start_reaper()

    async def detach(self, user: str) -> None:
        async with self._changed:
            self._drop(user, "detached")

    async def acquire_shared(self, holder: str, user: str) -> None:
        async with self._changed:
            requested = time.time()
            await self._changed.wait_for(
                lambda: (
                    user not in self._users
                    or (self._exclusive is None and self._waiting_exclusive == 0)
                )
            )
            self._check_attached(user)
            self._shared[holder] = user
            self._begin(holder, user, "shared", requested)

    async def acquire_exclusive(self, holder: str, user: str) -> None:
        async with self._changed:
            requested = time.time()
            self._waiting_exclusive += 1
            try:
                await self._changed.wait_for(
                    lambda: (
                        user not in self._users or (self._exclusive is None and not self._shared)
                    )
                )
            finally:
                self._waiting_exclusive -= 1
                self._changed.notify_all()
            self._check_attached(user)
            self._exclusive = (holder, user)
            self._begin(holder, user, "exclusive", requested)

    async def release(self, holder: str) -> None:
        async with self._changed:
            self._release(holder, "released")

    async def holders(self) -> dict[str, object]:
        return {
            "shared": sorted(self._shared),
            "exclusive": self._exclusive[0] if self._exclusive else None,
        }

    async def users(self) -> list[str]:
        return sorted(self._users)

    async def events(self) -> list[dict]:
        """The last ``MAX_EVENTS`` holds, oldest first: ``holder``, ``search``, ``mode``, the
        times it was ``requested``, ``acquired`` and ``ended`` (None while held), and ``how`` it
        ended: ``released``, or ``detached`` / ``search gone`` when its search was dropped
        while it held."""
        return [dict(e) for e in self._events]

    def _check_attached(self, user: str) -> None:
        if user not in self._users:  # dropped while it waited: its driver is gone
            raise RuntimeError(f"search {user} is no longer attached to this device lock")

    def _begin(self, holder: str, user: str, mode: str, requested: float) -> None:
        event = {
            "holder": holder,
            "search": user,
            "mode": mode,
            "requested": requested,
            "acquired": time.time(),
            "ended": None,
            "how": None,
        }
        self._events.append(event)
        self._open[holder] = event

    def _release(self, holder: str, how: str) -> None:
        self._shared.pop(holder, None)
        if self._exclusive is not None and self._exclusive[0] == holder:
            self._exclusive = None
        event = self._open.pop(holder, None)
        if event is not None:
            event.update(ended=time.time(), how=how)
        self._changed.notify_all()

    def _drop(self, user: str, how: str) -> None:
        """Forget a search and release whatever its trials held."""
        self._users.pop(user, None)
        held = [h for h, u in self._shared.items() if u == user]
        if self._exclusive is not None and self._exclusive[1] == user:
            held.append(self._exclusive[0])
        for holder in held:
            self._release(holder, how)
        self._changed.notify_all()

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(REAP_S)
            for user, presence in list(self._users.items()):
                try:
                    await asyncio.wait_for(presence.ping.remote(), PING_TIMEOUT_S)
                except RayActorError:
                    async with self._changed:
                        self._drop(user, "search gone")
                except asyncio.TimeoutError:
                    pass
            if not self._users:
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return


def _lock_handles() -> list[ActorHandle]:
    handles = []
    for name in ray.util.list_named_actors(all_namespaces=False):
        if name.startswith(LOCK_PREFIX):
            with _lock_gone_ok():
                handles.append(ray.get_actor(name))
    return handles


@contextmanager
def _lock_gone_ok() -> Iterator[None]:
    """A lock that exited or died with its node has nothing left to release."""
    try:
        yield
    except (RayActorError, ValueError):
        pass


def release_everywhere(holder: str) -> None:
    """Release ``holder`` on every lock (called by the driver when a trial ends, however it
    ended); locks that died with their node are skipped."""
    for handle in _lock_handles():
        with _lock_gone_ok():
            ray.get(handle.release.remote(holder))


def open_lock(node_id: str, device: str, user: LockUser) -> ActorHandle:
    """``device``'s lock on node ``node_id``, created there on first use, with ``user``'s
    search attached; retried while a lock that no search used any more exits."""
    for attempt in itertools.count(1):
        handle = DeviceLock.options(
            name=lock_name(node_id, device),
            get_if_exists=True,
            lifetime="detached",
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote()
        try:
            ray.get(handle.attach.remote(user.key, user.presence))
            return handle
        except RayActorError:  # it was exiting: its name is free again in a moment
            if attempt == OPEN_ATTEMPTS:
                raise
            time.sleep(0.5 * attempt)


class DeviceLease:
    """Blocking acquire/release of one device's lock on this node for one holder (a trial) of
    ``user``'s search; the lock is opened again if it exited meanwhile."""

    def __init__(self, holder: str, user: LockUser, device: str):
        self.holder = holder
        self.user = user
        self.node_id = ray.get_runtime_context().get_node_id()
        self.device = device
        self.name = lock_name(self.node_id, device)
        self.lock = open_lock(self.node_id, device, user)

    def _call(self, method: str, *args: str) -> None:
        try:
            ray.get(getattr(self.lock, method).remote(self.holder, *args))
        except RayActorError:
            self.lock = open_lock(self.node_id, self.device, self.user)
            ray.get(getattr(self.lock, method).remote(self.holder, *args))

    def acquire_shared(self) -> None:
        self._call("acquire_shared", self.user.key)

    def acquire_exclusive(self) -> None:
        self._call("acquire_exclusive", self.user.key)

    def release(self) -> None:
        with _lock_gone_ok():  # gone with everything it held
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
