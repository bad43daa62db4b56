"""Files from elsewhere (training configs, CIFAR batches, search files and stores) cannot run
code or write outside their folders: each is refused with a one-line error, exit status 2."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from nas.data.readers import UnsafePickleError, read_cifar
from nas.search.config import ConfigError, folder_name, load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "search_spaces" / "tiny.yaml"


class WritesFile:
    """A pickle whose loading would create ``path`` (what a crafted batch can do)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_crafted_cifar_batch_is_refused_and_runs_nothing(tmp_path: Path, nas_cli) -> None:
    folder, marker = tmp_path / "cifar-10-batches-py", tmp_path / "pwned"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": WritesFile(marker), b"labels": [0]}, f)
    with pytest.raises(UnsafePickleError, match=r"test_batch: refused to unpickle pathlib"):
        read_cifar(tmp_path, "cifar10", "test")
    assert not marker.exists()
    result = nas_cli(
        "data", "convert", "--source", "cifar10", "--input", str(tmp_path),
        "--output", str(tmp_path / "x.beton"), "--split", "test", "--num-workers", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("nas data: error: ") and "refused to unpickle" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_genuine_cifar_batch_still_loads(tmp_path: Path, protocol: int) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
    batch = {b"data": data, b"labels": [1, 2, 3], b"filenames": [b"a.png"] * 3, b"x": "s"}
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    with open(tmp_path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f, protocol)
    loaded = read_cifar(tmp_path, "cifar10", "test")
    np.testing.assert_array_equal(loaded.images, data.reshape(-1, 3, 32, 32))
    assert loaded.labels.tolist() == [1, 2, 3] and loaded.class_names[9] == "c9"


@pytest.mark.parametrize("override", ["name=../../x", "search.study=../x", "name=a/b", "name=.."])
def test_names_that_would_become_paths_are_refused(override: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key}: expected a plain name"):
        load_config(TINY, [override])


def test_search_cli_refuses_a_path_name_and_writes_nothing(tmp_path: Path, nas_cli) -> None:
    result = nas_cli("search", str(TINY), "name=../escaped", f"run_dir={tmp_path / 'runs'}",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"nas search: error: {TINY}: name: expected a plain name (no '/', '\\' or '..'), "
        "found '../escaped'"
    )
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("stored", "folder"),
    [("../../x", "____x"), ("/etc/cron.d/x", "_etc_cron.d_x"), ("..", "_"), ("ok-1", "ok-1")],
)
def test_names_read_back_from_a_store_become_one_folder(stored: str, folder: str) -> None:
    assert folder_name(stored) == folder
    assert Path(folder_name(stored)).name == folder_name(stored)


CALLBACK = """\
defaults: [train_schema, _self_]
hydra:
  callbacks:
    x:
      _target_: pathlib.Path.touch
      _args_: [{marker}]
"""
LOGGING = """\
defaults: [train_schema, _self_]
hydra:
  job_logging:
    handlers:
      evil:
        class: pathlib.Path.touch
        self: {marker}
"""
FACTORY = """\
defaults: [train_schema, _self_]
hydra:
  job_logging:
    formatters:
      evil:
        (): pathlib.Path.touch
        self: {marker}
"""


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (CALLBACK, "hydra.callbacks.x._target_"),
        (LOGGING, "hydra.job_logging.handlers.evil.class"),
        (FACTORY, "hydra.job_logging.formatters.evil.()"),
    ],
)
def test_train_config_cannot_instantiate_arbitrary_targets(
    tmp_path: Path, body: str, key: str, nas_cli
) -> None:
    marker = tmp_path / "pwned"
    config = tmp_path / "train.yaml"
    config.write_text(body.format(marker=marker))
    result = nas_cli("train", str(config), f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"nas train: error: {config}: {key}: pathlib.Path.touch may not be instantiated from a "
        "training config; allowed: hydra._internal.core_plugins.basic_launcher.BasicLauncher, "
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper, logging.FileHandler, "
        "logging.Formatter, logging.StreamHandler"
    )
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_trainer_module_checks_the_same(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "train.yaml").write_text(CALLBACK.format(marker=marker))
    result = subprocess.run(
        [sys.executable, "-m", "trainers.train", "--config-path", str(tmp_path),
         "--config-name", "train", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "may not be instantiated" in result.stderr
    assert not marker.exists()


LISTENING = """
import json, psutil, ray
from nas.search.runner import init_ray
init_ray(None)
ray.get(ray.remote(lambda: 0).remote())  # a worker started too
family = [psutil.Process()] + psutil.Process().children(recursive=True)
pids = {p.pid: p.name() for p in family}
sockets = [
    (pids[c.pid], c.laddr.ip, c.laddr.port)
    for c in psutil.net_connections(kind="inet")
    if c.status == psutil.CONN_LISTEN and c.pid in pids
]
ray.shutdown()
print(json.dumps(sockets))
"""


def test_local_ray_instance_listens_on_loopback_only(tmp_path: Path) -> None:
    """The instance a one-machine search starts (GCS, raylet, object manager, workers) has no
    reason to be reachable from other hosts, whatever Ray's own authentication allows."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, "-c", LISTENING],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    sockets = json.loads(result.stdout.splitlines()[-1])
    names = {name for name, _, _ in sockets}
    assert {"gcs_server", "raylet"} <= names, sockets  # the servers were seen listening
    loopback = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
    assert [s for s in sockets if s[1] not in loopback] == []


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def pg_role():
    """A PostgreSQL role with a password and a database of its own, dropped afterwards."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    name = f"nas_pw_{uuid.uuid4().hex[:8]}"
    password = f"s3cret-{uuid.uuid4().hex}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
            conn.exec_driver_sql(f"CREATE DATABASE {name} OWNER {name}")
    except OperationalError as err:  # CI installs the server: there a missing one fails
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"needs PostgreSQL: {err}")
    yield name, password
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        conn.exec_driver_sql(f"DROP ROLE {name}")
    admin.dispose()


def _stored_text(url: str) -> str:
    """Every row of every table of the database, as text."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [
            str(row)
            for table in inspect(conn).get_table_names()
            for row in conn.execute(text(f'SELECT * FROM "{table}"'))
        ]
    engine.dispose()
    return "\n".join(rows)


def test_a_postgresql_password_is_never_shown_or_stored(pg_role, tmp_path: Path, nas_cli) -> None:
    """Given through the environment, the password reaches the database driver and nothing
    else: not the output, not a stored row, not a file of the run or of the export."""
    role, password = pg_role
    url = f"postgresql://{role}:{password}@127.0.0.1:5432/{role}"
    storage = f"storage=postgresql://{role}:${{oc.env:NAS_TEST_PG_PASSWORD}}@127.0.0.1:5432/{role}"
    search = nas_cli(
        "search", str(TINY), storage, "search.trials=1", f"run_dir={tmp_path / 'runs'}",
        cwd=tmp_path, env={"NAS_TEST_PG_PASSWORD": password}, timeout=600,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr[-3000:]
    export = nas_cli("export", url, "--out", str(tmp_path / "export"), cwd=tmp_path)
    assert export.returncode == 0, export.stderr[-3000:]

    masked = f"postgresql://{role}:***@127.0.0.1:5432/{role}"
    assert masked in search.stdout  # the store is named, its password masked
    stored = _stored_text(url)
    assert masked in stored and "nas_trials" not in stored  # the config row holds the mask
    for shown in (search.stdout, search.stderr, export.stdout, export.stderr, stored):
        assert password not in shown
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "train.yaml" for p in written)
    assert [p for p in written if password.encode() in p.read_bytes()] == []
