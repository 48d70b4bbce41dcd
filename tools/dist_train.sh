#!/usr/bin/env bash
# Distributed training on one or more machines with torchrun.
#   tools/dist_train.sh CONFIG GPUS [tools/train.py options]
# See tools/dist_run.sh for NNODES, NODE_RANK, MASTER_ADDR, PORT and PYTHON.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG GPUS [train.py options]" >&2
  exit 1
fi
exec "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
