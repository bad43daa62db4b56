"""Searches on a real multi-node Ray cluster started on this machine (``ray.cluster_utils.
Cluster``): a head with no CPU for trials, two 1-CPU worker nodes with the custom resource
``worker`` (trials ask for it, so they land on both), and a 4-CPU node declaring one GPU without
hardware. One search goes through the real CLI against PostgreSQL: its trials run on both
workers, one worker is removed while its trial trains, then the driver is killed with -9 and
resumed with the same command. Another runs four trials at 0.25 GPU on the GPU node. The
oracles are the store, the Optuna study, Ray's own resource accounting and the device locks'
own logs, which the test reads by attaching to the locks as a second search would."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import ray
from ray.cluster_utils import Cluster

from nas.search.config import ConfigError, load_config
from nas.search.device_lock import LOCK_PREFIX, close_presence, lock_name, open_lock, open_presence
from nas.search.runner import RAY_NAMESPACE, ResourceError, check_resources, run_search
from nas.search.trainable import cuda_index
from nas.store import SearchStore

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "search_spaces" / "tiny.yaml"


@dataclasses.dataclass
class RayCluster:
    cluster: Cluster
    nodes: dict[str, Any]  # ray._private.node.Node by role: a, b (workers), gpu

    @property
    def address(self) -> str:
        return self.cluster.address

    def node_id(self, role: str) -> str:
        return self.nodes[role].node_id


@pytest.fixture(scope="module")
def cluster():
    """The cluster, with this process connected to it; shut down even when a test fails.
    Ray's sessions and its "latest cluster" file go to a fresh short folder (``RAY_TMPDIR``;
    socket paths must stay under 108 bytes), never ``/tmp/ray``, so no later ``ray.init()``
    on this machine, in this process or another, joins this cluster."""
    folder = tempfile.mkdtemp(prefix="nas-ray-", dir="/tmp")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", folder)
        env.delenv("RAY_ADDRESS", raising=False)
        ray.shutdown()  # a local Ray another test of this process started
        head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        try:
            nodes = {
                "a": head.add_node(num_cpus=1, resources={"worker": 1}),
                "b": head.add_node(num_cpus=1, resources={"worker": 1}),
                "gpu": head.add_node(num_cpus=4, num_gpus=1),
            }
            ray.init(address=head.address, namespace=RAY_NAMESPACE, log_to_driver=False)
            yield RayCluster(head, nodes)
        finally:
            ray.shutdown()
            head.shutdown()
            shutil.rmtree(folder, ignore_errors=True)


def _wait(what: str, ready: Callable[[], Any], timeout: float = 240, alive=None) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        if alive is not None:
            assert alive.poll() is None, f"the driver ended while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return value


def _trials(url: str) -> list:
    """The search's trial rows; none before the driver created the tables."""
    from sqlalchemy.exc import ProgrammingError

    store = SearchStore(url, read_only=True)
    try:
        searches = store.searches()
        return store.trials(searches[0].id) if searches else []
    except ProgrammingError:
        return []
    finally:
        store.dispose()


def _lock_names() -> list[str]:
    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(LOCK_PREFIX)
    ]


def _overlap(a: dict, b: dict) -> bool:
    return a["acquired"] < b["ended"] and b["acquired"] < a["ended"]


def _check_exclusive_alone(events: list[dict]) -> None:
    """No hold on a lock overlaps an exclusive hold (a measurement had the device alone)."""
    for e in events:
        assert e["ended"] is not None, e
    for x in (e for e in events if e["mode"] == "exclusive"):
        assert not [o for o in events if o is not x and _overlap(x, o)], x


def test_search_spans_two_nodes_and_survives_a_lost_node_and_a_killed_driver(
    cluster: RayCluster, pg_url: str, tmp_path: Path
) -> None:
    a, b = cluster.node_id("a"), cluster.node_id("b")
    hosts = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
    tester = open_presence("test")  # a second search on the same locks: they outlive the search
    locks = {node: open_lock(node, "cpu", tester) for node in (a, b)}
    budget = 4
    command = [
        sys.executable, "-m", "nas.cli", "search", str(TINY), f"ray.address={cluster.address}",
        f"storage={pg_url}", f"run_dir={tmp_path}", f"search.trials={budget}",
        "search.pruner.kind=none", "proxy.epochs=5", "resources.custom={worker: 1}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

    def training_on(node: str, after: int = -1) -> Any:
        """A trial running on ``node`` past its measurement (epoch 1 or 2 of 5 stored: it
        is sure to train on while the test acts)."""
        rows = _trials(pg_url)
        return next(
            (t for t in rows if t.node_id == node and t.epochs_done in (1, 2)
             and t.state == "RUNNING" and t.number > after),
            None,
        )  # fmt: skip

    def ended(number: int) -> Any:
        return next((t for t in _trials(pg_url) if t.number == number and t.state != "RUNNING"), 0)

    def lock_left_by_dead_search() -> bool:
        return ray.get(locks[b].users.remote()) == [tester.key] and ray.get(
            locks[b].holders.remote()
        ) == {"shared": [], "exclusive": None}

    with open(tmp_path / "first.log", "w") as log:
        driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        victim = _wait("a trial training on node a", lambda: training_on(a), alive=driver)
        events_a = ray.get(locks[a].events.remote())  # node a's lock goes with its node
        cluster.cluster.remove_node(cluster.nodes["a"], allow_graceful=False)
        lost = _wait("the lost trial's record", lambda: ended(victim.number), alive=driver)
        _wait(
            "a finished trial, and one training on node b after the loss",
            lambda: (
                any(t.state == "COMPLETE" for t in _trials(pg_url))
                and training_on(b, after=victim.number)
            ),
            alive=driver,
        )
        before_kill = {t.number: (t.state, t.values) for t in _trials(pg_url)}
        os.kill(driver.pid, signal.SIGKILL)  # the driver only: the cluster lives on
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert lost.state == "FAIL" and lost.node_id == a
    assert lost.reason.startswith(f"node lost: Ray node {a} ({hosts[a]}) left the cluster")
    # the killed driver's search is dropped from the lock with whatever its trials held
    _wait("the lock to drop the killed search", lock_left_by_dead_search, timeout=60)

    resumed = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.splitlines()[1].startswith("resuming tiny-"), resumed.stdout
    assert "1 lost with their node and re-run, not counted" in resumed.stdout

    rows = _trials(pg_url)
    by_number = {t.number: t for t in rows}
    for number, (state, values) in before_kill.items():  # nothing finished was lost
        if state in ("COMPLETE", "PRUNED"):
            assert (by_number[number].state, by_number[number].values) == (state, values)
    store = SearchStore(pg_url, read_only=True)
    (search,) = store.searches()
    study = optuna.load_study(study_name=search.study_name, storage=pg_url)
    trials = {t.number: t for t in study.trials}
    rerun = [t for t in rows if t.reason and t.reason.startswith(("node lost", "interrupted"))]
    trained = [t for t in rows if t.state != "DUPLICATE"]
    counted = [t for t in trained if t not in rerun]
    assert search.status == "finished" and len(counted) == budget
    assert len(trained) == budget + len(rerun), "each lost or interrupted trial runs once more"
    for t in rerun:
        again = [u for u in trials.values() if u.user_attrs.get("requeued_from") == t.number]
        assert len(again) == 1 and again[0].params == trials[t.number].params
        assert again[0].state.is_finished()
    assert trials[victim.number].user_attrs["node_lost"] is True

    placed = [t for t in trained if t.epochs_done]
    assert {t.node_id for t in placed} == {a, b}, "trials ran on both worker nodes"
    assert all(t.node_host == hosts[t.node_id] for t in placed)
    assert all(t.node_id == b for t in placed if t.number > victim.number)

    # every architecture measured once, on the node of the trial that measured it, holding
    # that node's lock alone
    events = {a: events_a, b: ray.get(locks[b].events.remote())}
    _check_exclusive_alone(events[b])
    arch_of = {t.ray_trial_id: t.arch_hash for t in trained}
    measured = {t.arch_hash: store.throughputs(t.arch_hash) for t in counted}
    for arch, rows_ in measured.items():
        assert len(rows_) == 1, arch
        (row,) = rows_
        assert row.node_id in (a, b) and row.node_host == hosts[row.node_id]
        holds = [
            (node, e)
            for node, log in events.items()
            for e in log
            if e["mode"] == "exclusive" and e["how"] == "released" and arch_of[e["holder"]] == arch
        ]
        assert [node for node, _ in holds] == [row.node_id], (arch, holds)
    store.dispose()

    # the search left every lock; the last user leaving removes it
    assert ray.get(locks[b].users.remote()) == [tester.key]
    assert ray.get(locks[b].holders.remote()) == {"shared": [], "exclusive": None}
    close_presence(tester)
    _wait("the locks to exit", lambda: not _lock_names(), timeout=30)


def test_four_trials_share_one_gpu_and_measure_alone(cluster: RayCluster, tmp_path) -> None:
    gpu_node = cluster.node_id("gpu")
    tester = open_presence("test")
    lock = open_lock(gpu_node, "gpu0", tester)
    cfg = load_config(
        TINY,
        [
            f"run_dir={tmp_path}", f"ray.address={cluster.address}", "resources.gpu=0.25",
            "search.trials=4", "search.max_concurrent=4", "search.pruner.kind=none",
            "proxy.epochs=4", "proxy.device=cpu", "throughput.device=cpu",
        ],
    )  # fmt: skip
    least_free: list[float] = []
    done = threading.Event()

    def watch() -> None:  # Ray's own accounting of the GPU while the search runs
        while not done.wait(0.2):
            least_free.append(ray.available_resources().get("GPU", 0.0))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        outcome = run_search(cfg)
    finally:
        done.set()
        watcher.join()
    assert outcome.counts["COMPLETE"] == 4, outcome.counts
    assert min(least_free) == 0.0, "four quarter-GPU trials held the one GPU at once"

    study = optuna.load_study(study_name=outcome.study_name, storage=outcome.storage_url)
    for trial in (t for t in study.trials if "duplicate_of" not in t.user_attrs):
        placement = trial.user_attrs["placement"]
        assert placement["node_id"] == gpu_node
        assert placement["gpu_ids"] == ["0"] and placement["cuda_visible_devices"] == "0"
        assert placement["lock"] == lock_name(gpu_node, "gpu0")

    events = ray.get(lock.events.remote())
    store = SearchStore(outcome.storage_url, read_only=True)
    rows = store.trials(store.searches()[0].id)
    holders = {t.ray_trial_id for t in rows if t.state != "DUPLICATE"}
    store.dispose()
    assert {e["holder"] for e in events} == holders
    exclusive = [e for e in events if e["mode"] == "exclusive"]
    assert sorted(e["holder"] for e in exclusive) == sorted(holders), "one measurement each"
    _check_exclusive_alone(events)
    shared = [e for e in events if e["mode"] == "shared"]
    assert any(_overlap(x, y) for x in shared for y in shared if x["holder"] != y["holder"]), (
        "trials trained on the GPU at the same time"
    )
    assert ray.get(lock.users.remote()) == [tester.key]  # the search left the lock
    close_presence(tester)
    _wait("the lock to exit", lambda: not _lock_names(), timeout=30)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["resources.custom={worker: 2}"], "the most any node of the Ray cluster has is 1"),
        (["resources.custom={a100: 1}"], "but no node of the Ray cluster ("),
        (
            ["resources.gpu=0.25", "resources.custom={worker: 1}"],
            "no single node of the Ray cluster has everything one trial asks for",
        ),
    ],
)
def test_requests_no_node_can_grant_are_refused(cluster, overrides, message) -> None:
    cfg = load_config(TINY, [f"ray.address={cluster.address}", *overrides])
    with pytest.raises(ResourceError, match=re.escape(message)):
        check_resources(cfg)


def test_a_local_search_starts_its_own_ray_beside_a_running_cluster(cluster) -> None:
    """Ray's ``ray.init()`` joins the cluster started last on the machine; a search without
    ``ray.address`` must not (this cluster's address is in ``$RAY_TMPDIR``'s latest-cluster
    file, where Ray looks)."""
    code = (
        "import ray; from nas.search.runner import init_ray; init_ray(None); "
        "print(ray.get_runtime_context().gcs_address)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    address = result.stdout.strip().splitlines()[-1]
    assert address and address != cluster.address


@pytest.mark.parametrize(
    ("gpu_id", "visible", "index"), [("0", "0", 0), ("3", "2,3", 1), ("2", None, 2)]
)
def test_a_trial_uses_the_gpu_ray_assigned(gpu_id: str, visible: str | None, index: int) -> None:
    assert cuda_index(gpu_id, visible) == index


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["resources.custom={CPU: 1}"], "resources.custom: expected custom resource names"),
        (["resources.custom={a100: 0}"], "resources.custom.a100: expected > 0, found 0"),
        (["resources.custom={a100: fast}"], "resources.custom.a100: expected a number"),
        (
            ["ray.address=auto", "resources.gpu=0.25", "proxy.device=cuda:1"],
            "proxy.device: 'cuda:1', but a trial sees only the 1 GPU Ray assigns it",
        ),
    ],
)
def test_bad_resources_are_refused(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(TINY, overrides)
