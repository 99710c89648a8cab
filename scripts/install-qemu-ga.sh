#!/usr/bin/env bash
# Unpacks (never installs) qemu-ga 10.0.2 from bookworm-backports under $QGA_DIR, for the guest
# agent tests: they run it on the host as `qemu-ga -m unix-listen` with every command that
# changes the host blocked. Installing the package would start a system agent; unpacking does
# not. Safe to run again: does nothing when the binary is there. Needs root (or sudo) only
# for apt-get update and writing $QGA_DIR.
set -euo pipefail

QGA_DIR=${QGA_DIR:-/opt/qemu-ga}

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

if [ ! -x "$QGA_DIR/usr/sbin/qemu-ga" ]; then
  echo "install-qemu-ga: unpacking qemu-guest-agent (bookworm-backports) into $QGA_DIR" >&2
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' |
      $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  if ! apt-cache show -t bookworm-backports qemu-guest-agent >/dev/null 2>&1; then
    $SUDO apt-get update -qq
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq -t bookworm-backports qemu-guest-agent)
  $SUDO mkdir -p "$QGA_DIR"
  for deb in "$tmp"/*.deb; do $SUDO dpkg-deb -x "$deb" "$QGA_DIR"; done
fi

"$QGA_DIR/usr/sbin/qemu-ga" --version | head -n 1
