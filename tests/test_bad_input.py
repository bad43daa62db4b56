"""Bad input to the ``nas`` command line: each case is one line on stderr naming the key or file,
exit status 2, no traceback, and nothing created or changed on disk or in the store.

Most cases call ``nas.cli.main`` in this process (the same code the ``nas`` script runs, without
paying torch's import per case); the cases about imports, hangs and tracebacks run the CLI as a
real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from nas.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "search_spaces" / "tiny.yaml"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"/" for p in root.rglob("*")
    }


def _fails(capsys, argv: list[str], *needles: str) -> str:
    """Run ``nas ARGV``; assert exit 2 and one stderr line naming every needle; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"nas {argv[0]}: error: "), err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    """A folder holding a copy of ``tiny.yaml`` as the working directory (``run_dir: runs``)."""
    shutil.copy(TINY, tmp_path / "tiny.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# YAML files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("name: x\nspace: {stages: [1, 2]\n", [":3:1: expected ',' or '}'", "flow mapping at 2:8"]),
        ("name: x\nspace:\n\tstages: []\n", [":3:1: found character '\\t'"]),
        ("name: x\nname: y\n", [":2:1: duplicate key 'name' (first given at line 1)"]),
        ("- a\n- b\n", ["expected a mapping of keys at the top, found list ['a', 'b']"]),
        ("", ["expected a mapping of keys at the top, found an empty file"]),
    ],
    ids=["unclosed-flow-mapping", "tab", "duplicate-key", "top-level-list", "empty"],
)
def test_broken_search_file(work: Path, capsys, body: str, needles: list[str]) -> None:
    (work / "bad.yaml").write_text(body)
    before = _tree(work)
    _fails(capsys, ["search", "bad.yaml", "search.trials=2"], "bad.yaml", *needles)
    assert _tree(work) == before


def test_directory_as_search_file(work: Path, capsys) -> None:
    _fails(capsys, ["search", str(work)], f"search file {work}: expected a YAML file, found a dir")


def test_interpolation_names_the_key_holding_it(work: Path, capsys) -> None:
    _fails(
        capsys, ["search", "tiny.yaml", "space.image_size=${nope}"], "space.image_size: ", "nope"
    )


def test_broken_arch_and_training_files(work: Path, capsys) -> None:
    (work / "arch.yaml").write_text("stages: [{depth: 2, dim: 64\n")
    _fails(capsys, ["profile", "arch.yaml"], "arch.yaml:2:1: expected ',' or '}'")
    (work / "train.yaml").write_text("- epochs\n")
    _fails(capsys, ["train", "train.yaml"], "train.yaml: expected a mapping of keys at the top")
    (work / "folder.yaml").mkdir()
    _fails(
        capsys, ["profile", "folder.yaml"], "architecture file folder.yaml: expected a YAML file"
    )


@pytest.mark.parametrize(
    "override, needle",
    [
        ("epochs=-1", "epochs: expected an integer >= 1, found -1"),
        ("data.batch_size=31", "data.batch_size: Mixup/CutMix pairs samples within a batch"),
        ("resume=nope.pt", "resume: checkpoint 'nope.pt' does not exist"),
        ("device=cdua", "device: expected auto, cpu, cuda, cuda:N or mps, found 'cdua'"),
        ("data.name=imagefolder data.path=nope", "data val_path: expected a validation image"),
    ],
)
def test_bad_training_values_end_in_one_line(
    tmp_path: Path, override: str, needle: str, nas_cli
) -> None:
    """Checked inside the Hydra job, they reached the user as Hydra's report of a crashed job
    (a traceback, exit status 1)."""
    from nas.export import write_export

    write_export("convformer_s18", tmp_path / "export")
    result = nas_cli("train", "export/train.yaml", *override.split(), cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"nas train: error: {needle}"), result.stderr


@pytest.mark.parametrize("kind", ["search", "profile"])
def test_alias_bomb_fails_fast(tmp_path: Path, kind: str, nas_cli) -> None:
    """Nine-fold aliases nine deep (~400 bytes, 10^9 values expanded) must not hang."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 500
    result = nas_cli(kind, str(path), timeout=60)
    assert result.returncode == 2, result.stderr
    assert "expands to more than 100,000 values through its aliases" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_yaml_error_in_a_real_process_has_no_traceback(tmp_path: Path, nas_cli) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nspace: {stages: [1, 2]\n")
    result = nas_cli("search", str(path), "search.trials=3")
    assert result.returncode == 2
    assert result.stderr == (
        f"nas search: error: {path}:3:1: expected ',' or '}}', but got '<stream end>' "
        "(while parsing a flow mapping at 2:8)\n"
    )


# storage URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        ("nonsense", ["storage: 'nonsense' is not a database URL; expected sqlite:///"]),
        ("foo://x/y", ["storage: unknown database kind 'foo'", "expected sqlite:///"]),
        (
            "postgresql://postgres:hunter2@127.0.0.1:1/test",
            ["storage: cannot open postgresql://postgres:***@127.0.0.1:1/test", "start the server"],
        ),
        (
            f"{PG_SERVER}/nope_h14",
            ['database "nope_h14" does not exist', "create it (createdb nope_h14)"],
        ),
        ("sqlite:///missing/dir/search.db", ["folder missing/dir does not exist; create it"]),
        ("sqlite:///notes.txt", ["notes.txt is not an SQLite database"]),
        ("sqlite:///sub", ["sub is a folder; expected a database file path"]),
    ],
    ids=["not-a-url", "dialect", "unreachable", "no-database", "no-folder", "text-file", "folder"],
)
def test_bad_storage_touches_nothing(work: Path, capsys, url: str, needles: list[str]) -> None:
    (work / "notes.txt").write_text("not a database\n")
    (work / "sub").mkdir()
    before = _tree(work)
    err = _fails(capsys, ["search", "tiny.yaml", f"storage={url}"], *needles)
    assert "hunter2" not in err
    assert _tree(work) == before  # no runs/ folder, no empty database file, text file intact
    admin = create_engine(f"{PG_SERVER}/postgres")
    with admin.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = 'nope_h14'")).all()
    admin.dispose()
    assert found == []


@pytest.mark.parametrize("command", ["export", "dashboard", "validate"])
def test_every_command_checks_the_store(work: Path, capsys, command: str) -> None:
    (work / "notes.txt").write_text("not a database\n")
    before = _tree(work)
    _fails(capsys, [command, "notes.txt"], "storage: sqlite:///", "is not an SQLite database")
    assert _tree(work) == before


# accepted but wrong ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("throughput.device=cdua", "throughput.device: expected auto, cpu, cuda, cuda:N or mps"),
        ("proxy.device=cuda:99", "proxy.device: 'cuda:99' is not on this machine, which has cpu"),
        ("search.timeout_minutes=-1", "search.timeout_minutes: expected > 0, found -1"),
        ("space.image_size=1000000", "space.image_size: expected <= 2,048, found 1000000"),
        ("space.stages.0.dim=1000000", "space.stages[0].dim: expected <= 8,192, found 1000000"),
        ("space.stages.0.depth=100000", "space.stages[0].depth: expected <= 128, found 100000"),
        ("+space.stages.0.mlp_ratio=1000", "space.stages[0].mlp_ratio: expected > 0 and <= 16"),
        ("throughput.batch=100000", "throughput.batch: expected >= 1 and <= 4,096"),
        ("+throughput.resolution=100000", "throughput.resolution: expected >= 1 and <= 2,048"),
        ("+proxy.width_mult=1000", "proxy.width_mult: expected <= 16, found 1000"),
        ("+proxy.data.resolution=100000", "proxy.data.resolution: expected None or an integer in"),
        ("+proxy.data.batch_size=1000000", "proxy.data.batch_size: expected an integer <= 65,536"),
        ("+search.pruner.reduction_factor=1", "search.pruner.reduction_factor: expected >= 2"),
        ("+resources.cpu=0", "resources.cpu: expected > 0, found 0"),
    ],
)
def test_wrong_values_fail_up_front(work: Path, capsys, override: str, needle: str) -> None:
    _fails(capsys, ["search", "tiny.yaml", override], "tiny.yaml: ", needle)
    assert not (work / "runs").exists()


def test_arch_file_sizes_are_bounded(work: Path, capsys) -> None:
    stage = {"depth": 2, "dim": 1_000_000, "mixer": "pooling"}
    (work / "arch.yaml").write_text(json.dumps({"stages": [stage]}))
    _fails(capsys, ["profile", "arch.yaml"], "arch.yaml: arch.stages[0].dim: expected <= 8,192")
    stage["dim"] = 64
    (work / "arch.yaml").write_text(json.dumps({"image_size": 1_000_000, "stages": [stage]}))
    _fails(capsys, ["profile", "arch.yaml"], "arch.image_size: expected <= 2,048, found 1000000")


# the command line itself ---------------------------------------------------------------------


def test_flags_and_overrides_interleave(work: Path, capsys) -> None:
    """An override after a flag still reaches the configuration (here: rejected, by name)."""
    needle = "search.trialz is not in tiny.yaml (did you mean 'trials'?)"
    _fails(capsys, ["search", "tiny.yaml", "search.seed=1", "--resume", "search.trialz=3"], needle)
    _fails(capsys, ["bench", "build", "tiny.yaml", "--archs", "2", "search.trialz=3"], needle)
    assert not (work / "runs").exists()


def test_help_imports_no_heavy_library() -> None:
    """``--help`` of every command parses without torch, Ray, Optuna or Streamlit."""
    code = (
        "import sys\n"
        "from nas.cli import build_parser\n"
        "parser = build_parser()\n"
        "commands = [[]] + [[c] for c in parser._subparsers._group_actions[0].choices]\n"
        "for argv in commands:\n"
        "    try:\n"
        "        parser.parse_args([*argv, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'ray', 'optuna', 'streamlit', 'timm', 'sqlalchemy')\n"
        "print('LOADED', [m for m in heavy if m in sys.modules], len(commands), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    loaded = result.stderr.strip().splitlines()[-1]
    assert loaded.startswith("LOADED [] "), loaded
    assert int(loaded.split()[-1]) >= 10  # every command's help was printed


def test_validation_errors_import_no_heavy_library(tmp_path: Path) -> None:
    """Bad keys of every section (space, mixer knob, seed design, proxy, data, device, storage)
    are found without torch, timm or Ray: the specs, knob declarations and configs are
    torch-free, and the storage URL is opened before Ray starts."""
    missing = tmp_path / "no_such_folder" / "s.db"
    cases = [
        ["space.mixers.sepconv.kernal_size=3"],
        ["space.mixers.sepconv.kernel_size.choices=[4]"],
        ["references=[caformer_s19]"],
        ["proxy.epochz=1"],
        ["proxy.data.batch_size=0"],
        ["proxy.device=cdua"],
        [f"storage=sqlite:///{missing}"],
    ]
    code = (
        "import sys\n"
        "from nas.cli import main\n"
        f"cases = {cases!r}\n"
        f"codes = [main(['search', {str(TINY)!r}, *case]) for case in cases]\n"
        "heavy = ('torch', 'timm', 'ray', 'torchvision')\n"
        "print('CODES', codes, file=sys.stderr)\n"
        "print('LOADED', [m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 0, result.stderr
    assert len([line for line in lines if ": error: " in line]) == len(cases), result.stderr
    assert lines[-2] == f"CODES {[2] * len(cases)}", result.stderr
    assert lines[-1] == "LOADED []", result.stderr
    assert not missing.parent.exists()


def test_unreadable_data_fails_before_the_search_is_stored(work: Path, capsys) -> None:
    """A wrong data path used to be found after the search's row was written (then marked
    failed); it must end the command with nothing stored."""
    _fails(
        capsys,
        ["search", "tiny.yaml", "proxy.data.name=imagefolder", "proxy.data.path=nope"],
        "data val_path: expected a validation image folder, found 'nope/val'",
    )
    assert not (work / "runs" / "tiny" / "search.db").exists()
