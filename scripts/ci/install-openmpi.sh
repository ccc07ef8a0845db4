#!/usr/bin/env bash
# Installs Debian's Open MPI (mpirun + libmpi.so.40) for the distributed tests (tests/PostTrain.Training.Tests/Distributed).
# Idempotent: does nothing when mpirun and libmpi.so.40 are already there. Needs root (CI containers run as root).
set -euo pipefail
if command -v mpirun >/dev/null && ldconfig -p | grep -q 'libmpi.so.40'; then
  echo "Open MPI already installed: $(mpirun --version 2>/dev/null | head -1)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends openmpi-bin libopenmpi-dev
mpirun --version | head -1
