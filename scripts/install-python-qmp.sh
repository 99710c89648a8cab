#!/usr/bin/env bash
# Creates the Python virtualenv with qemu.qmp that the interoperation tests and the benchmarks
# use, when it is missing: target/bench-venv (or $QMP_PYTHON_VENV), qemu.qmp 0.0.6 from PyPI.
# Installs Debian's python3-venv first if `python3 -m venv` cannot work.
# Safe to run again: every step checks first. Prints the venv's python.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${QMP_PYTHON_VENV:-${CARGO_TARGET_DIR:-$root/target}/bench-venv}"
version=0.0.6

if "$venv/bin/python" -c "import qemu.qmp, importlib.metadata as m; assert m.version('qemu.qmp') == '$version'" >/dev/null 2>&1; then
  echo "$venv/bin/python"
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "install-python-qmp: installing python3-venv" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    python3-venv >/dev/null
fi

echo "install-python-qmp: creating $venv with qemu.qmp $version" >&2
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "qemu.qmp==$version" >&2
"$venv/bin/python" -c "import qemu.qmp" >&2
echo "$venv/bin/python"
