"""A search's driver over its life: interrupted (SIGTERM, then Ctrl-C) and resumed, one driver
per search (the lease), a killed worker recorded with its cause, requests the cluster cannot
grant refused up front, architectures too large for memory rejected before training."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import optuna
import pytest
import torch

from nas.models import build_model
from nas.models.memory import estimate_training_memory
from nas.search.config import load_config
from nas.search.lease import LEASE_TTL_S, DriverLease, LeaseError
from nas.store import SearchStore
from nas.store.models import utcnow

TINY = Path(__file__).resolve().parents[1] / "search_spaces" / "tiny.yaml"


def _command(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli", "search", str(TINY), f"run_dir={run_dir}", *extra]


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        _command(run_dir, *extra),
        cwd=run_dir,
        env=env,
        start_new_session=True,  # a terminal's Ctrl-C reaches the whole process group
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rows(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
            return con.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def _wait_finished(proc: subprocess.Popen, db: Path, at_least: int) -> None:
    deadline = time.monotonic() + 240
    sql = "SELECT COUNT(*) FROM nas_trials WHERE state IN ('COMPLETE', 'PRUNED')"
    while (_rows(db, sql) or [(0,)])[0][0] < at_least:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the search made no progress"
        time.sleep(0.3)


def _interrupt(proc: subprocess.Popen, signum: int) -> tuple[str, str]:
    """Ctrl-C as a terminal sends it (to the process group); SIGTERM as ``kill PID`` does."""
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-3000:]
    assert "interrupted: resume with the same command" in err
    assert "Traceback" not in err
    return out, err


def test_interrupted_twice_then_resumed_counts_add_up(tmp_path: Path) -> None:
    db = tmp_path / "tiny" / "search.db"
    proc = _start(tmp_path, "search.trials=10")
    _wait_finished(proc, db, 2)
    _interrupt(proc, signal.SIGTERM)
    assert _rows(db, "SELECT status, driver_token FROM nas_searches") == [("interrupted", None)]
    assert _rows(db, "SELECT COUNT(*) FROM nas_trials WHERE state = 'RUNNING'") == [(0,)]
    interrupted = _rows(db, "SELECT COUNT(*) FROM nas_trials WHERE reason LIKE 'interrupted%'")

    proc = _start(tmp_path, "search.trials=10")
    _wait_finished(proc, db, 4)
    out, _ = _interrupt(proc, signal.SIGINT)
    assert out.splitlines()[1].startswith("resuming tiny-")  # said at start-up
    assert interrupted[0][0] >= 1 and "interrupted trial" in out.splitlines()[1]

    result = subprocess.run(
        _command(tmp_path, "search.trials=10"), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = next(line for line in result.stdout.splitlines() if " complete, " in line)
    complete, pruned, failed = (
        int(summary.split(word)[0].split()[-1]) for word in (" complete", " pruned", " failed")
    )
    assert complete + pruned + failed == 10, summary
    assert "interrupted and re-run, not counted" in summary
    assert _rows(db, "SELECT status FROM nas_searches") == [("finished",)]


def _worker_pids() -> set[int]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in ps.splitlines() if "ray::ImplicitFunc" in line}


def test_second_driver_is_refused_and_a_killed_worker_is_recorded(tmp_path: Path) -> None:
    db = tmp_path / "tiny" / "search.db"
    first = _start(tmp_path, "search.trials=16")
    _wait_finished(first, db, 1)
    os.kill(first.pid, signal.SIGSTOP)  # the first driver, alive, cannot finish meanwhile
    second = subprocess.run(
        _command(tmp_path, "search.trials=16"), cwd=tmp_path, capture_output=True, text=True
    )
    assert second.returncode == 2
    assert f"being run by another driver (pid {first.pid} on host" in second.stderr
    assert "--takeover" in second.stderr and "Traceback" not in second.stderr
    takeover = subprocess.run(
        _command(tmp_path, "search.trials=16", "--takeover"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert takeover.returncode == 2 and "live process on this host" in takeover.stderr
    os.kill(first.pid, signal.SIGCONT)

    deadline = time.monotonic() + 60
    while not (workers := _worker_pids()):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.2)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    reasons = [r for (r,) in _rows(db, "SELECT reason FROM nas_trials WHERE state = 'FAIL'")]
    assert any("worker process died" in r and f"pid {victim}" in r for r in reasons if r), reasons


def test_lease_expires_and_takeover_is_explicit(tmp_path: Path) -> None:
    store = SearchStore(f"sqlite:///{tmp_path / 'lease.db'}")
    search = store.create_search(
        study_name="s",
        name="s",
        fingerprint="f",
        config={},
        objectives=[],
        directions=[],
        trials_requested=1,
    )
    held = DriverLease.claim(store, search)
    other_host = dict(driver_host="elsewhere", driver_pid=1, heartbeat_at=utcnow())
    assert store.claim_driver(search.id, held.token, **other_host)
    with pytest.raises(LeaseError, match="pid 1 on host elsewhere"):
        DriverLease.claim(store, store.get_search("s"))
    taken = DriverLease.claim(store, store.get_search("s"), takeover=True)
    assert not store.claim_driver(search.id, held.token, heartbeat_at=utcnow())  # held lost it
    stale = utcnow() - timedelta(seconds=LEASE_TTL_S + 5)
    assert store.claim_driver(search.id, taken.token, driver_host="elsewhere", heartbeat_at=stale)
    again = DriverLease.claim(store, store.get_search("s"))  # expired: no --takeover needed
    again.release()
    row = store.get_search("s")
    assert (row.driver_token, row.driver_host, row.driver_pid) == (None, None, None)
    assert socket.gethostname()  # the host the lease records


def test_more_cpus_than_any_node_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    result = subprocess.run(
        _command(tmp_path, "resources.cpu=64"), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "resources.cpu: each trial asks for 64 CPUs, but the largest node" in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tiny" / "search.db").exists()


def test_memory_estimate_counts_parameters_and_activations_exactly() -> None:
    cfg = load_config(TINY)
    study = optuna.create_study(directions=cfg.directions)
    for _ in range(6):
        spec = cfg.space.sample(study.ask())
        estimate = estimate_training_memory(spec, 4, 10)
        model = build_model(spec, num_classes=10)
        outputs: list[int] = []

        def record(_module, _inputs, out, sink=outputs) -> None:
            sink.append(out.numel() * out.element_size())

        for module in model.modules():
            if not any(True for _ in module.children()):
                module.register_forward_hook(record)
        model(torch.randn(4, spec.in_chans, spec.image_size, spec.image_size))
        assert estimate.params == sum(p.numel() for p in model.parameters())
        assert estimate.activation_bytes == sum(outputs)


@pytest.fixture
def small_ray():
    """A local Ray that may schedule 4 MiB: no architecture of the tiny space fits."""
    import ray

    ray.shutdown()
    ray.init(num_cpus=2, _memory=4 * 2**20, include_dashboard=False, namespace="nas")
    yield
    ray.shutdown()


def test_nothing_fits_ends_the_search_failed_with_its_reason(tmp_path: Path, small_ray) -> None:
    from nas.search.runner import SearchFailed, run_search

    cfg = load_config(
        TINY, [f"run_dir={tmp_path}", "search.trials=60", "proxy.data.batch_size=2048"]
    )
    with pytest.raises(SearchFailed, match="50 sampled architectures in a row could not be"):
        run_search(cfg)
    store = SearchStore(cfg.storage_url(), read_only=True)
    (search,) = store.searches()
    assert search.status == "failed" and "does not fit in memory" in search.reason
    assert all(t.state in ("FAIL", "DUPLICATE") for t in store.trials(search.id))
    assert search.driver_token is None


def test_validation_and_bench_runs_resume_a_live_lease_only_with_takeover(tmp_path: Path) -> None:
    """The lease guards every resumable run, not only searches: a validation (or benchmark
    pass) whose driver on another host still heartbeats is refused, and taken over on request."""
    from nas.search.runner import create_study, open_proposal_run

    cfg = load_config(TINY, [f"run_dir={tmp_path}"])
    url = cfg.storage_url()
    store = SearchStore(url)
    create_study(url, "tiny-validate-1", cfg)
    row = store.create_search(
        study_name="tiny-validate-1", name="tiny", fingerprint="fp", config=cfg.stored_raw,
        objectives=cfg.objective_names, directions=cfg.directions, trials_requested=3,
        kind="validation",
    )  # fmt: skip
    assert store.claim_driver(
        row.id, None, driver_token="theirs", driver_host="elsewhere", driver_pid=1,
        heartbeat_at=utcnow(),
    )  # fmt: skip
    args = (cfg, store, url, "fp", "tiny-validate", "validation", 3)
    with pytest.raises(LeaseError, match="pid 1 on host elsewhere.*--takeover"):
        open_proposal_run(*args)
    run = open_proposal_run(*args, takeover=True)
    assert run.resumed and run.study.study_name == "tiny-validate-1"
    (search,) = store.searches()
    assert (search.driver_host, search.driver_pid) == (socket.gethostname(), os.getpid())
    run.lease.release()
    store.dispose()
