"""docker/: no image can be built here (no Docker engine), so what can be checked is: the image
and CI install through the one script, and that script, run with the Dockerfile's own arguments,
installs a working ``nas`` into a fresh environment; the Dockerfile and the shell scripts pass
their linters; Docker Compose itself reads the compose files, and the cluster they describe
keeps its ports private, its secrets out of the file and its commands in step with the CLI."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
INSTALL = "docker/install.sh"
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "RAY_AUTH_TOKEN": "ray-secret"}


def _needs(what: str) -> None:
    """CI installs everything these tests use (dev extras, docker/install.sh): never skip there."""
    (pytest.fail if os.environ.get("CI") else pytest.skip)(what)


def _tool(name: str) -> str:
    """A linter or validator the dev extras install beside this interpreter."""
    path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    if found is None:
        _needs(f"needs {name}: pip install -e '.[dev]'")
    return found


def _install_calls(lines: list[str]) -> list[list[str]]:
    """The arguments of each call of docker/install.sh among shell ``lines``."""
    calls = []
    for line in lines:
        words = shlex.split(line, comments=True) if INSTALL in line else []
        if INSTALL in words:
            calls.append(words[words.index(INSTALL) + 1 :])
    return calls


def _ci_lines() -> list[str]:
    return (ROOT / ".ci" / "run").read_text().splitlines()


def _dockerfile_runs() -> tuple[list[str], dict[str, str]]:
    """The Dockerfile's RUN instructions (continuation lines joined, the --mount flag dropped)
    and its ARG defaults."""
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    runs, args = [], {}
    for line in text.splitlines():
        if m := re.match(r"RUN\s+(?:--mount=\S+\s+)*(.*)", line):
            runs.append(m.group(1))
        elif m := re.match(r"ARG\s+(\w+)=(\S+)", line):
            args[m.group(1)] = m.group(2)
    return runs, args


def _image_install_args() -> list[str]:
    """docker/install.sh's arguments in the image, its build arguments at their defaults."""
    runs, args = _dockerfile_runs()
    (call,) = _install_calls(runs)
    expanded = [re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], word) for word in call]
    return expanded[: expanded.index("&&")] if "&&" in expanded else expanded


def _extras(call: list[str]) -> set[str]:
    return set(call[call.index("--extras") + 1].split(","))


def _system_packages(call: list[str]) -> list[str]:
    out = subprocess.run(
        ["bash", INSTALL, "--list-system-packages", *call],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def _installed(package: str) -> bool:
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return "install ok installed" in status.stdout


def test_ci_and_the_image_install_through_the_one_script() -> None:
    ci_calls = _install_calls(_ci_lines())
    assert len(ci_calls) == 1, ".ci/run must call docker/install.sh once"
    runs, _ = _dockerfile_runs()
    assert len(_install_calls(runs)) == 1, "the Dockerfile must RUN docker/install.sh once"
    # neither installs anything behind the script's back
    for where, lines in ((".ci/run", _ci_lines()), ("docker/Dockerfile", runs)):
        for line in lines:
            code = line.split("#")[0]
            assert not re.search(r"\bapt(-get)?\s+install|\bpip3?\s+install", code), (
                f"{where} installs outside docker/install.sh: {line.strip()}"
            )
    # what the image holds, CI tests: its extras and system packages are among CI's
    (ci_call,) = ci_calls
    image_call = _image_install_args()
    assert _extras(image_call) <= _extras(ci_call)
    assert set(_system_packages(image_call)) <= set(_system_packages(ci_call))
    assert "--python" not in ci_call + image_call  # both install into the machine's python3


def test_install_script_installs_the_image_into_a_fresh_environment(tmp_path) -> None:
    """docker/install.sh run exactly as the Dockerfile runs it, into a fresh virtual environment
    that sees this machine's packages: torch and the other dependencies are already there (no
    download), so what runs is the script's own logic, its system-package check (present:
    no apt-get) and pip's install of a copy of the project with the image's extras."""
    image_call = _image_install_args()
    missing = [p for p in _system_packages(image_call) if not _installed(p)]
    if missing:
        _needs(f"system packages {missing}: run bash docker/install.sh {shlex.join(image_call)}")
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "nas", "dashboard", "trainers", "docker"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    venv = tmp_path / "venv"
    # no pip of its own: the machine's pip, seen through the system site-packages, installs into it
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
        check=True,
    )
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        ["bash", INSTALL, *image_call, "--python", str(python)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "installing system packages" not in done.stdout  # all present: no apt-get
    # the project is installed in the venv, from the copy, with its command
    located = subprocess.run(
        [
            str(python),
            "-c",
            "import nas, dashboard, trainers; "
            "print(nas.__file__, dashboard.__file__, trainers.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for path in located.stdout.split():
        assert Path(path).is_relative_to(project), located.stdout
    nas = subprocess.run(
        [str(venv / "bin" / "nas"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert nas.returncode == 0 and "search" in nas.stdout, nas.stderr


def test_install_script_refuses_bad_options() -> None:
    for args, message in (
        (["--torch", "gpu"], "--torch must be keep, cpu or cuda, not 'gpu'"),
        (["--extra", "dev"], "unknown option '--extra'"),
    ):
        done = subprocess.run(["bash", INSTALL, *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [_tool("hadolint"), "--no-color", "--failure-threshold", "style", "docker/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [".ci/run", INSTALL, "docker/join-cluster.sh"]
    done = subprocess.run(
        [_tool("shellcheck"), "--severity=style", *scripts],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for script in scripts:  # run in place: the image keeps the modes git has
        assert os.access(ROOT / script, os.X_OK), f"{script} is not executable"


def _compose(tmp_path: Path, *files: str, env: dict[str, str] = SECRETS):
    """``docker compose config`` (Docker Compose itself, no engine needed) of ``files``, with
    ``env`` as the .env file and nothing from this process's environment."""
    binary = _tool("docker-compose")
    version = subprocess.run([binary, "version", "--short"], capture_output=True, text=True)
    if not re.match(r"v?([2-9]|\d{2,})\.", version.stdout.strip()):
        _needs(f"needs Docker Compose v2 or later, found {binary}: {version.stdout.strip()}")
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COMPOSE_", "NAS_", "DOCKER_")) and k not in SECRETS
    }
    args = [binary, "--env-file", str(env_file)]
    for name in files:
        args += ["-f", name]
    return subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=DOCKER,
        env=clean,
        capture_output=True,
        text=True,
    )


def _config(tmp_path: Path, *files: str) -> dict:
    done = _compose(tmp_path, *files)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


NAS_SERVICES = ("ray-head", "ray-worker", "search", "dashboard")


def test_compose_cluster_is_private_scalable_and_keeps_its_secrets(tmp_path) -> None:
    services = _config(tmp_path, "compose.yaml")["services"]
    assert set(services) == {"postgres", *NAS_SERVICES}
    # the one published port: the dashboard's, on the host's loopback
    published = {n: s["ports"] for n, s in services.items() if s.get("ports")}
    assert list(published) == ["dashboard"]
    (port,) = published["dashboard"]
    assert port.get("host_ip") == "127.0.0.1" and port["published"] == "8501"
    # workers scale: no fixed container name, no host port
    assert "container_name" not in services["ray-worker"]
    # the store lives in a named volume, and the services wait for it to answer
    postgres = services["postgres"]
    (volume,) = postgres["volumes"]
    assert volume["type"] == "volume" and volume["target"] == "/var/lib/postgresql/data"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert services["search"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["search"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    # one image for every nas service, and one Ray token on every Ray process
    assert {services[n]["image"] for n in NAS_SERVICES} == {"nas-mixers:cpu"}
    for name in ("ray-head", "ray-worker", "search"):
        environment = services[name]["environment"]
        assert environment["RAY_AUTH_MODE"] == "token"
        assert environment["RAY_AUTH_TOKEN"] == SECRETS["RAY_AUTH_TOKEN"]
    # passwords reach the processes through the environment, never a command line
    for name, service in services.items():
        words = (service.get("entrypoint") or []) + (service.get("command") or [])
        assert not any(secret in " ".join(words) for secret in SECRETS.values()), name
    assert services["search"]["environment"]["PGPASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    assert services["dashboard"]["environment"]["PGPASSWORD"] == SECRETS["POSTGRES_PASSWORD"]


def test_compose_commands_are_ones_the_cli_and_ray_accept(tmp_path) -> None:
    """The services' commands, read back through the real parsers: a renamed option or file
    fails here, not on a cluster."""
    from nas.cli import build_parser
    from nas.search.config import load_config

    services = _config(tmp_path, "compose.yaml")["services"]
    search = services["search"]
    (entrypoint,) = search["entrypoint"]
    assert entrypoint.startswith("/app/") and (ROOT / entrypoint[5:]).is_file()
    assert search["command"][0] == "nas"
    args = build_parser().parse_args(search["command"][1:])
    cfg = load_config(ROOT / args.file, args.overrides)
    assert cfg.ray.address == "auto" and cfg.storage == "postgresql://nas@postgres:5432/nas"

    dashboard = services["dashboard"]
    args = build_parser().parse_args(dashboard["command"][1:])
    assert args.target == cfg.storage and args.host == "0.0.0.0"
    assert dashboard["ports"][0]["target"] == args.port
    assert f":{args.port}/" in dashboard["healthcheck"]["test"][-1]

    # the head's port is the one the workers and the driver join
    head = services["ray-head"]["command"]
    port = next(w.split("=")[1] for w in head if w.startswith("--port="))
    assert f"--address=ray-head:{port}" in services["ray-worker"]["command"]
    assert search["environment"]["RAY_ADDRESS"] == f"ray-head:{port}"
    assert f"--address=localhost:{port}" in services["ray-head"]["healthcheck"]["test"]


def test_compose_gpu_override_builds_cuda_and_gives_workers_the_gpus(tmp_path) -> None:
    services = _config(tmp_path, "compose.yaml", "compose.gpu.yaml")["services"]
    for name in NAS_SERVICES:
        assert services[name]["image"] == "nas-mixers:cuda"
        assert services[name]["build"]["args"]["VARIANT"] == "cuda"
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
    (device,) = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "deploy" not in services["ray-head"]  # the head runs no trials
    # both variants are --torch values install.sh takes
    assert "--torch" in _image_install_args()
    for variant in ("cpu", "cuda"):
        _system_packages(["--torch", variant])  # raises on a value it refuses


def test_compose_refuses_to_start_without_the_secrets(tmp_path) -> None:
    for unset in SECRETS:
        env = {**SECRETS, unset: ""}
        done = _compose(tmp_path, "compose.yaml", env=env)
        assert done.returncode != 0
        assert f"required variable {unset} is missing a value" in done.stderr
        assert "docker/env.example" in done.stderr
