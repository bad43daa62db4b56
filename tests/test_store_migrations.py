"""The store across versions: a store written by release b6c471a (tests/data, before the schema
had a version) is migrated by Alembic when a writer opens it, keeps every row, resumes its
search and shows in the dashboard; readers never write and say what to run; a store of a newer
nas is refused; Optuna's own migrations never meet ours; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, inspect, text
from streamlit.testing.v1 import AppTest

from dashboard.views.common import md
from nas.cli import main
from nas.store import SearchStore, StoreOutdated, StoreTooNew, make_engine
from nas.store.models import Base
from nas.store.schema import VERSION_TABLE, head, lock_for_migration, schema_state, upgrade

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
TINY = ROOT / "search_spaces" / "tiny.yaml"
RELEASE_STORE = ROOT / "tests" / "data" / "store_b6c471a.db"  # how it was made: its README
RELEASE_STUDY = "tiny-20261204-230607-18cf"
RELEASE_OVERRIDES = ("search.trials=4", "proxy.epochs=1")  # the command that wrote it
OPTUNA_VERSION = "v3.2.0.a"  # Optuna's own revision in the release store's alembic_version
NODE_COLUMNS = {"nas_trials": {"node_id", "node_host"}, "nas_throughput": {"node_id", "node_host"}}

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def release_store(tmp_path) -> Path:
    """A copy of the release store as the run folder ``runs/tiny`` of a search would hold it."""
    db = tmp_path / "runs" / "tiny" / "search.db"
    db.parent.mkdir(parents=True)
    shutil.copyfile(RELEASE_STORE, db)
    return db


def _url(db: Path) -> str:
    return f"sqlite:///{db}"


def _digest(db: Path) -> str:
    """The database's content, its write-ahead log included."""
    wal = db.with_name(db.name + "-wal")
    return hashlib.sha256(db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")).hexdigest()


def _rows(db: Path, columns: dict[str, list[str]] | None = None) -> dict[str, tuple]:
    """Every table's column names and rows (sorted), ``columns`` of each table if given."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {}
        for table in tables:
            names = (columns or {}).get(table) or [
                r[1] for r in con.execute(f'PRAGMA table_info("{table}")')
            ]
            picked = ", ".join(f'"{n}"' for n in names)
            rows = con.execute(f'SELECT {picked} FROM "{table}"').fetchall()
            out[table] = (names, sorted(rows, key=repr))
        return out
    finally:
        con.close()


def _schema_diffs(engine) -> list:
    """What Alembic's autogenerate finds between the database's nas_* tables and the models."""

    def ours(name, kind, _parents) -> bool:
        return kind != "table" or name in Base.metadata.tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": ours})
        return compare_metadata(context, Base.metadata)


def _columns(engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in inspect(conn).get_columns(table)}


def _versions(engine) -> tuple[list, list]:
    """(Optuna's alembic_version rows, our nas_schema_version rows)."""
    with engine.connect() as conn:
        optuna_rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        ours = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    return [r[0] for r in optuna_rows], [r[0] for r in ours]


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _app(url: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("NAS_DASHBOARD_STORAGE", url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_the_writer_migrates_the_release_store_keeping_every_row(release_store) -> None:
    before = _rows(release_store)
    assert VERSION_TABLE not in before and "nas_trials" in before  # written before versions
    study_before = optuna.load_study(study_name=RELEASE_STUDY, storage=_url(release_store))
    store = SearchStore(_url(release_store))
    assert store.schema().status == "current" and store.schema().revision == head()
    assert _schema_diffs(store.engine) == []  # the migrated tables are the models' tables
    for table, names in NODE_COLUMNS.items():
        assert names <= _columns(store.engine, table)
    assert _versions(store.engine) == ([OPTUNA_VERSION], [head()])
    store.dispose()
    after = _rows(release_store, {table: names for table, (names, _) in before.items()})
    assert set(after) == set(before) | {VERSION_TABLE}
    assert {t: after[t] for t in before} == before  # every row of every table, Optuna's too
    study = optuna.load_study(study_name=RELEASE_STUDY, storage=_url(release_store))
    assert [(t.number, t.state, t.values) for t in study.trials] == [
        (t.number, t.state, t.values) for t in study_before.trials
    ]


def test_readers_never_write_an_old_store_and_say_what_to_run(release_store, capsys) -> None:
    digest = _digest(release_store)
    url = _url(release_store)
    with pytest.raises(StoreOutdated, match=f"unversioned .*; run: nas db upgrade {url}$"):
        SearchStore(url, read_only=True)
    lenient = SearchStore(url, read_only=True, allow_outdated=True)
    assert lenient.schema().status == "outdated" and lenient.schema().revision is None
    lenient.dispose()
    status, out, err = _cli(capsys, "export", str(release_store.parent), "--pick", "knee")
    assert status == 2 and out == ""
    assert err.strip().splitlines() == [
        f"nas export: error: storage: {url}: schema unversioned (written before nas versioned "
        f"it), this nas's is {head()}; run: nas db upgrade {url}"
    ]
    assert _digest(release_store) == digest


def test_the_dashboard_shows_an_old_store_with_the_upgrade_command(
    release_store, monkeypatch
) -> None:
    digest = _digest(release_store)
    at = _app(str(release_store.parent), monkeypatch)
    (notice,) = [w.value for w in at.warning if "older nas" in w.value]
    assert notice.endswith(f"run `nas db upgrade {release_store.parent}`")
    assert [RELEASE_STUDY in o for o in at.sidebar.selectbox(key="search").options] == [True]
    at.sidebar.radio(key="view").set_value("Trial").run()
    at.number_input(key="trial_number").set_value(0).run()  # throughput table: no node columns
    assert not at.exception, at.exception
    assert any("Trial 0 · COMPLETE" in h.value for h in at.subheader)
    assert _digest(release_store) == digest


def _trials(db: Path) -> dict[int, tuple]:
    """Trial number -> (state, accuracy, throughput, values) as the database holds them."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute('SELECT number, state, accuracy, throughput, "values" FROM nas_trials')
        return {number: rest for number, *rest in rows}
    finally:
        con.close()


def test_the_release_search_resumes_after_migrating_and_shows(
    release_store, nas_cli, monkeypatch
) -> None:
    """The command that wrote the store, run again: its search opens (and migrates) the store,
    re-runs the two interrupted trials and finishes; the dashboard then shows the front."""
    before = _trials(release_store)
    assert [t[0] for t in before.values()] == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    runs = release_store.parent.parent
    result = nas_cli("search", str(TINY), f"run_dir={runs}", *RELEASE_OVERRIDES, "--resume",
                     timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"resuming {RELEASE_STUDY}: 2 of 4 trials finished" in result.stdout
    after = _trials(release_store)
    assert {n: after[n] for n in before} == before  # the finished trials are kept as they were
    store = SearchStore(_url(release_store), read_only=True)  # current: a reader opens it
    (search,) = store.searches()
    assert (search.status, search.resumes) == ("finished", 1)
    complete = [t for t in store.trials(search.id) if t.state == "COMPLETE"]
    assert len(complete) == search.trials_requested == 4
    store.dispose()
    study = optuna.load_study(study_name=RELEASE_STUDY, storage=_url(release_store))
    assert len(study.get_trials(states=[optuna.trial.TrialState.COMPLETE])) == 4
    at = _app(_url(release_store), monkeypatch)
    assert not [w for w in at.warning if "older nas" in w.value]
    front = next(d.value for d in at.dataframe if "knee" in d.value.columns)
    points = {t.number: (t.accuracy, t.throughput) for t in complete}
    dominated = {
        n for n, (a, r) in points.items()
        if any(b >= a and s >= r and (b, s) != (a, r) for b, s in points.values())
    }  # fmt: skip
    assert set(front["trial"]) == set(points) - dominated


def test_a_store_older_than_the_baseline_is_brought_up(tmp_path) -> None:
    """Columns added before the schema had a version (the release added them on open): the
    baseline adds what a table lacks and gives existing rows the column's default; a column a
    development build already added ad hoc (node_id) is left as it is."""
    url = _url(tmp_path / "search.db")
    store = SearchStore(url)
    search = store.create_search(
        study_name="old", name="old", fingerprint="f", config={}, objectives=["accuracy"],
        directions=["maximize"], trials_requested=3,
    )  # fmt: skip
    store.add_trial(search.id, 0, optuna_trial_id=0, params={"x": 1}, accuracy=0.5)
    with store.engine.begin() as conn:
        for column in ("seeds", "accuracy_low", "node_host"):  # node_id: added ad hoc before
            conn.exec_driver_sql(f"ALTER TABLE nas_trials DROP COLUMN {column}")
        conn.exec_driver_sql("ALTER TABLE nas_searches DROP COLUMN kind")
        conn.exec_driver_sql("DROP TABLE nas_throughput")
        conn.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")
    store.dispose()
    store = SearchStore(url)
    assert store.schema().status == "current"
    (trial,) = store.trials(search.id)
    assert (trial.params, trial.accuracy, trial.seeds, trial.accuracy_low) == (
        {"x": 1},
        0.5,
        1,
        None,
    )
    assert store.searches()[0].kind == "search"
    assert "nas_throughput" in inspect(store.engine).get_table_names()
    store.dispose()


def test_a_store_of_a_newer_nas_is_refused_untouched(release_store, capsys, monkeypatch) -> None:
    url = _url(release_store)
    SearchStore(url).dispose()
    with sqlite3.connect(release_store) as con:
        con.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
    con.close()
    digest = _digest(release_store)
    newer = f"schema 9999, newer than this nas's {head()} (a newer nas wrote it); upgrade nas"
    for read_only in (True, False):
        with pytest.raises(StoreTooNew, match=re.escape(newer)):
            SearchStore(url, read_only=read_only)
    status, out, err = _cli(capsys, "db", "upgrade", url)
    assert (status, out) == (2, "") and len(err.splitlines()) == 1 and newer in err
    assert _cli(capsys, "db", "status", url) == (0, f"{url}: {newer} to use it\n", "")
    at = _app(url, monkeypatch)
    assert [md(newer) in e.value for e in at.error] == [True]  # shown escaped
    assert _digest(release_store) == digest


def test_nas_db_status_and_upgrade(release_store, tmp_path, capsys) -> None:
    folder = str(release_store.parent)
    url = _url(release_store)
    assert _cli(capsys, "db", "status", folder) == (
        0,
        f"{url}: schema unversioned (written before nas versioned it), this nas's is {head()}; "
        f"run: nas db upgrade {folder}\n",
        "",
    )
    assert _cli(capsys, "db", "upgrade", folder) == (
        0, f"{url}: upgraded from schema unversioned to {head()}\n", ""
    )  # fmt: skip
    assert (
        _cli(capsys, "db", "upgrade", folder)[1]
        == f"{url}: schema {head()}, current, nothing to do\n"
    )
    assert _cli(capsys, "db", "status", url)[1] == f"{url}: schema {head()}, current\n"
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    missing = tmp_path / "missing.db"
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    for target, message in [
        (str(empty), f"storage: sqlite:///{empty} holds no nas store, nothing to upgrade; a search creates one"),
        (str(notes), f"storage: sqlite:///{notes}: {notes} is not an SQLite database; give a search.db that nas wrote or a new file name"),
        (_url(missing), f"storage: sqlite:///{missing}: {missing} does not exist; give the search.db of a run"),
        (str(tmp_path / "nope"), f"{tmp_path / 'nope'} is neither a storage URL, a run folder nor a database file"),
    ]:  # fmt: skip
        assert _cli(capsys, "db", "upgrade", target) == (2, "", f"nas db: error: {message}\n")
    assert not missing.exists() and empty.stat().st_size == 0
    assert notes.read_text() == "not a database\n"
    assert _cli(capsys, "db", "status", str(empty))[1] == (
        f"sqlite:///{empty}: no nas tables yet; a search creates them\n"
    )


def test_nas_dashboard_warns_of_an_old_store_and_serves_it(release_store) -> None:
    """``nas dashboard`` names the upgrade command before it starts the server."""
    folder = str(release_store.parent)
    server = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "dashboard", folder, "--port", "0"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        warning = server.stderr.readline()
        assert server.stdout.readline().startswith(
            f"dashboard of {_url(release_store)} (read-only)"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the command and the server it started
        server.communicate(timeout=60)
    assert warning == (
        f"warning: an older nas wrote this store (schema unversioned (written before nas "
        f"versioned it), this nas's is {head()}); the dashboard shows what it can; to bring it "
        f"up to date, run: nas db upgrade {folder}\n"
    )


def _writer_in_subprocess(url: str) -> subprocess.Popen:
    """A process that opens the store as a writer, saying ``opening`` just before."""
    code = (
        "import sys\nfrom nas.store import SearchStore\nprint('opening', flush=True)\n"
        "SearchStore(sys.argv[1]).dispose()\nprint('opened', flush=True)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, url], env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _writer_waits_for_a_migration(url: str) -> None:
    """Hold the migration lock of ``url`` while a second process opens it as a writer: that
    writer waits for the lock, then migrates it once it is free."""
    engine = make_engine(url)
    reader = make_engine(url, read_only=True)
    with engine.connect() as conn:
        lock_for_migration(conn)
        writer = _writer_in_subprocess(url)
        assert writer.stdout.readline() == "opening\n"
        time.sleep(1.0)
        assert writer.poll() is None  # waiting for our lock
        assert schema_state(reader).status != "current"
        conn.rollback()
    out, err = writer.communicate(timeout=120)
    assert (writer.returncode, out) == (0, "opened\n"), err
    assert schema_state(reader).status == "current"
    reader.dispose()
    engine.dispose()


def test_a_writer_waits_for_a_migration_under_way_sqlite(release_store) -> None:
    _writer_waits_for_a_migration(_url(release_store))
    engine = make_engine(_url(release_store))
    assert _versions(engine) == ([OPTUNA_VERSION], [head()])
    engine.dispose()


def test_postgresql_baseline_then_upgrade_keeps_optuna(pg_url, capsys) -> None:
    """A store at the baseline revision beside an Optuna study: readers refuse it, ``nas db
    upgrade`` brings it to the models' schema, and the study still loads."""
    study = optuna.create_study(study_name="pg", storage=pg_url, directions=["maximize"])
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, values=[0.25]))
    engine = make_engine(pg_url)
    assert upgrade(engine, pg_url, "0001")[1].revision == "0001"
    with engine.begin() as conn:  # a row written at the baseline
        searches = Table("nas_searches", MetaData(), autoload_with=conn)
        conn.execute(searches.insert().values(
            study_name="pg", name="pg", fingerprint="f", config={}, objectives=["accuracy"],
            directions=["maximize"], trials_requested=1, status="running", wall_seconds=0.0,
            resumes=0, kind="search", created_at=text("now()"),
        ))  # fmt: skip
    assert not NODE_COLUMNS["nas_trials"] & _columns(engine, "nas_trials")
    with pytest.raises(StoreOutdated, match=f"schema 0001, older than this nas's {head()}"):
        SearchStore(pg_url, read_only=True)
    assert _cli(capsys, "db", "upgrade", pg_url)[:2] == (
        0, f"{pg_url}: upgraded from schema 0001 to {head()}\n"
    )  # fmt: skip
    assert _schema_diffs(engine) == []
    optuna_versions, ours = _versions(engine)
    assert ours == [head()] and optuna_versions and optuna_versions != ours
    reader = SearchStore(pg_url, read_only=True)
    assert [s.study_name for s in reader.searches()] == ["pg"]
    reader.dispose()
    trials = optuna.load_study(study_name="pg", storage=pg_url).trials
    assert [t.values for t in trials] == [[0.25]]
    engine.dispose()


def test_postgresql_a_new_store_then_optuna_and_a_waiting_writer(pg_url) -> None:
    """Our tables first (as a search opens them), Optuna's after; a writer that opens the
    database while a migration holds its advisory lock waits for it."""
    _writer_waits_for_a_migration(pg_url)
    optuna.create_study(study_name="after", storage=pg_url)
    engine = make_engine(pg_url)
    assert _schema_diffs(engine) == []
    assert _versions(engine)[1] == [head()]
    engine.dispose()
