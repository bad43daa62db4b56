"""``nas dashboard``: browse a search store in the browser, read-only, beside a running search."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import dashboard

APP = Path(dashboard.__file__).resolve().parent / "app.py"


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dashboard",
        help="open the search dashboard (Pareto front, trials, export) in the browser",
        description="Serve the Streamlit dashboard of a search store. The store is opened "
        "read-only, so it is safe to keep open while the search runs.",
    )
    p.add_argument(
        "target",
        nargs="?",
        default="runs",
        help="run folder (runs/NAME), search.db file or storage URL (default: runs)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shares it)",
    )
    p.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    p.set_defaults(func=_dashboard)


LOOPBACK = ("127.0.0.1", "localhost", "::1")
STORAGE_ENV = "NAS_DASHBOARD_STORAGE"  # dashboard/app.py reads the store's URL from it


def streamlit_command(host: str, port: int) -> list[str]:
    """The ``streamlit run`` line: headless, no file watcher, no usage statistics. The store's
    URL is not on it (``ps`` would show its password): see :func:`streamlit_env`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
        "--theme.primaryColor",
        "#1F3B73",
    ]


def streamlit_env(url: str) -> dict[str, str]:
    """The server's environment: this one, plus the store's URL."""
    return {**os.environ, STORAGE_ENV: url}


def _dashboard(args: argparse.Namespace) -> int:
    from nas.store import SearchStore, resolve_storage
    from nas.store.engine import mask_url
    from nas.store.schema import upgrade_command

    if args.host not in LOOPBACK:
        print(
            f"warning: --host {args.host} serves the dashboard beyond this machine without "
            "authentication; put a reverse proxy with authentication in front of it (README, "
            "Dashboard)",
            file=sys.stderr,
        )
    url = resolve_storage(args.target)
    # a bad store fails here, not inside the server
    store = SearchStore(url, read_only=True, allow_outdated=True)
    schema = store.schema()
    store.dispose()
    if schema.status == "outdated":
        print(
            f"warning: an older nas wrote this store ({schema.describe()}); the dashboard shows "
            f"what it can; to bring it up to date, run: {upgrade_command(args.target)}",
            file=sys.stderr,
        )
    shown = "localhost" if args.host in ("127.0.0.1", "localhost") else args.host
    address = f"http://{shown}:{args.port}"
    print(f"dashboard of {mask_url(url)} (read-only) at {address}  (Ctrl-C stops it)")
    process = subprocess.Popen(streamlit_command(args.host, args.port), env=streamlit_env(url))
    # A stop request for this command must stop the server too, or it outlives us.
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to the server as well
        process.wait()
        return 0
