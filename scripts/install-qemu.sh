#!/usr/bin/env bash
# Installs the QEMU builds the demo and the tests use, when they are missing:
#   - QEMU 10.0.2 (qemu-system-x86, qemu-utils, qemu-storage-daemon) from Debian bookworm-backports;
#   - QEMU 7.2 unpacked (not installed) under $QEMU_72_DIR, to run side by side;
#   - qemu-ga 10.0.2 unpacked under $QGA_DIR (scripts/install-qemu-ga.sh).
# Safe to run again: every step checks first. Needs root (or sudo) only when it installs.
set -euo pipefail

QEMU_72_DIR=${QEMU_72_DIR:-/opt/qemu-7.2}
QEMU_72_VERSION=1:7.2+dfsg-7+deb12u18+b3

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

have_qemu_10() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 &&
    command -v qemu-storage-daemon >/dev/null 2>&1 &&
    qemu-system-x86_64 --version 2>/dev/null | grep -q 'version 10\.'
}

apt_updated=""
apt_update() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
}

if ! have_qemu_10; then
  echo "install-qemu: installing QEMU 10.0.2 from bookworm-backports" >&2
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' |
      $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
fi

if [ ! -x "$QEMU_72_DIR/usr/bin/qemu-system-x86_64" ]; then
  echo "install-qemu: unpacking QEMU 7.2 into $QEMU_72_DIR" >&2
  apt_update
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq \
    "qemu-system-x86=$QEMU_72_VERSION" "qemu-system-common=$QEMU_72_VERSION")
  $SUDO mkdir -p "$QEMU_72_DIR"
  for deb in "$tmp"/*.deb; do $SUDO dpkg-deb -x "$deb" "$QEMU_72_DIR"; done
fi

qemu-system-x86_64 --version | head -n 1
"$QEMU_72_DIR/usr/bin/qemu-system-x86_64" --version | head -n 1
"$(dirname "$0")/install-qemu-ga.sh"
