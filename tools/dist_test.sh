#!/usr/bin/env bash
# Distributed testing on one or more machines with torchrun.
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options]
# See tools/dist_run.sh for NNODES, NODE_RANK, MASTER_ADDR, PORT and PYTHON.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py options]" >&2
  exit 1
fi
exec "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
