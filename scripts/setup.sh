#!/bin/sh
# Installs exactly the Debian 12 packages nabla needs to build, test and run.
# Idempotent: dpkg is asked first, and apt-get runs only when something is missing.
# libjansson-dev reads and writes the JSON of saved models; clang, its
# libFuzzer runtime (libclang-rt-14-dev) and OpenMP (libomp-14-dev) build
# the fuzzing harnesses of scripts/fuzz.sh.
# openmpi-bin and libopenmpi-dev build libnabla-dist (data-parallel
# training, nabla/dist.h) and run its tests under mpirun.
# python3 and locales serve tests only: a saved model read back by a Python
# reader, and a comma-decimal locale (compiled by localedef from locales).
set -eu

PACKAGES="build-essential meson ninja-build pkgconf \
libblis-openmp-dev libcriterion-dev zlib1g-dev libjansson-dev dataset-fashion-mnist gnuplot-nox \
python3 locales clang libclang-rt-14-dev libomp-14-dev openmpi-bin libopenmpi-dev"

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
