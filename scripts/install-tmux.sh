#!/usr/bin/env bash
# Installs tmux when it is missing: the qmp shell's tests (qmp-cli/tests/shell_pty.rs) drive
# the shell in a tmux pseudo terminal. Needs root (or sudo) only when it installs.
set -euo pipefail
if command -v tmux >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "install-tmux: installing tmux" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends tmux >/dev/null
