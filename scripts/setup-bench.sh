#!/bin/sh
# Installs what the benchmarks compare nabla against, on top of setup.sh:
# PyTorch from Debian (run with /usr/bin/python3), OpenBLAS (loaded at run
# time by the op benchmark, never linked into nabla) and strace (system
# calls per step). Idempotent, like setup.sh.
set -eu
cd "$(dirname "$0")"
./setup.sh

PACKAGES="python3-torch python3-numpy libopenblas0-pthread strace"

if dpkg -s $PACKAGES >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends $PACKAGES
