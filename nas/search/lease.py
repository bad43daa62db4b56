"""One driver per search: a lease in the store (host, pid, heartbeat) that a second driver
respects.

Without it, starting a search's command again while its driver lives "resumes" it: the second
driver fails the live trials as interrupted and the first crashes telling them. A driver claims
the lease before it touches the search and renews it every ``HEARTBEAT_S``; another driver may
take it over only when its holder is gone: the heartbeat is older than ``LEASE_TTL_S``, or the
holder's pid is dead on this host (a ``kill -9`` resumed at once), or the user says so with
``--takeover`` (a holder on another host that cannot be checked from here).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable

from nas.errors import NasError
from nas.store import SearchStore
from nas.store.models import Search, utcnow

LEASE_TTL_S = 60.0
HEARTBEAT_S = 10.0
LOST = "another driver took this search over (--takeover); this one stopped handing out trials"


class LeaseError(NasError):
    """The search is being run by another, live driver."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_state(search: Search, host: str) -> tuple[bool, str]:
    """(whether the holder may still be alive, a description of it)."""
    age = (utcnow() - search.heartbeat_at).total_seconds() if search.heartbeat_at else 1e9
    who = f"pid {search.driver_pid} on host {search.driver_host}, heartbeat {age:.0f} s ago"
    if age > LEASE_TTL_S:
        return False, who
    if search.driver_host == host and search.driver_pid and not _pid_alive(search.driver_pid):
        return False, who
    return True, who


class DriverLease:
    """The lease of one search, held by this process until :meth:`release`."""

    def __init__(self, store: SearchStore, search_id: int, token: str):
        self.store = store
        self.search_id = search_id
        self.token = token
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    @classmethod
    def claim(cls, store: SearchStore, search: Search, takeover: bool = False) -> DriverLease:
        """Claim ``search``'s lease, or raise :class:`LeaseError` naming its live holder."""
        host = socket.gethostname()
        if search.driver_token is not None:
            alive, who = _holder_state(search, host)
            if alive and not takeover:
                raise LeaseError(
                    f"search {search.study_name} is being run by another driver ({who}): wait "
                    "for it or stop it; if that driver is gone, run the same command with "
                    f"--takeover (or wait {LEASE_TTL_S:.0f} s for its lease to expire)"
                )
            if alive and search.driver_host == host:
                raise LeaseError(
                    f"--takeover: search {search.study_name} is run by a live process on this "
                    f"host ({who}); stop it first"
                )
        token = secrets.token_hex(8)
        claimed = store.claim_driver(
            search.id,
            search.driver_token,
            driver_token=token,
            driver_host=host,
            driver_pid=os.getpid(),
            heartbeat_at=utcnow(),
        )
        if not claimed:
            raise LeaseError(
                f"search {search.study_name}: another driver claimed it at the same moment"
            )
        return cls(store, search.id, token)

    def keep_alive(self, on_lost: Callable[[str], None]) -> None:
        """Renew the heartbeat in a background thread; ``on_lost`` is told if another driver
        took the lease over (``--takeover``), so this one stops handing out trials."""

        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_S):
                if not self.store.claim_driver(self.search_id, self.token, heartbeat_at=utcnow()):
                    self.lost = True
                    on_lost(LOST)
                    return

        self._thread = threading.Thread(target=beat, name="nas-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop the heartbeat and free the lease (unless another driver took it over)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.store.claim_driver(
            self.search_id,
            self.token,
            driver_token=None,
            driver_host=None,
            driver_pid=None,
            heartbeat_at=None,
        )
