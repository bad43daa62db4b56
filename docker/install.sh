#!/usr/bin/env bash
# Installs nas and what it needs on a Debian machine. The one list of install steps: the image
# (docker/Dockerfile) and CI (.ci/run) both run it, so what CI tests is what the image holds.
#
#   docker/install.sh [--extras LIST] [--torch keep|cpu|cuda] [--browser] [--python PY]
#   docker/install.sh --list-system-packages [the same options]
#
#   --extras   the project's extras, comma-separated (default: postgres); ffcv brings the system
#              packages its build needs (a compiler, pkg-config, OpenCV and libjpeg-turbo headers)
#   --torch    keep (default): the torch the project's requirement resolves to, an installed one
#              kept (CI's: the machine's, which /etc/xdg/pip caps where it exists);
#              cpu: PyTorch's CPU wheels (no CUDA libraries); cuda: PyPI's build, which bundles
#              CUDA on Linux x86_64 (the host needs only the NVIDIA driver)
#   --browser  Debian's chromium and chromium-driver, which the dashboard's browser test drives
#   --python   the interpreter whose environment gets the packages (default: python3)
#
# System packages already installed are not asked for again (no apt-get at all when every one
# is), so a second run costs pip's check that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="postgres"
torch="keep"
browser=0
python="python3"
list_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --extras) extras="${2:?--extras needs a value}"; shift 2 ;;
        --torch) torch="${2:?--torch needs a value}"; shift 2 ;;
        --browser) browser=1; shift ;;
        --python) python="${2:?--python needs a value}"; shift 2 ;;
        --list-system-packages) list_only=1; shift ;;
        *) echo "install.sh: unknown option '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
case "$torch" in
    keep | cpu) ;;
    cuda)
        if [ "$(uname -m)" != "x86_64" ]; then
            echo "install.sh: --torch cuda takes PyPI's CUDA build, which exists for x86_64 only" \
                "(this machine: $(uname -m))" >&2
            exit 2
        fi ;;
    *) echo "install.sh: --torch must be keep, cpu or cuda, not '$torch'" >&2; exit 2 ;;
esac

packages=()
if [[ ",$extras," == *",ffcv,"* ]]; then
    packages+=(build-essential pkg-config libopencv-dev libturbojpeg0-dev)
fi
if [ "$browser" = 1 ]; then
    packages+=(chromium chromium-driver)
fi
if [ "$list_only" = 1 ]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
    echo "install.sh: installing system packages ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

"$python" -m pip install -q --upgrade pip
case "$torch" in
    cpu) "$python" -m pip install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu ;;
    cuda) "$python" -m pip install -q torch torchvision ;;
esac
"$python" -m pip install -q -e ".[$extras]"
