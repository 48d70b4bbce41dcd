#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh:
#   tools/dist_run.sh TOOL NPROC [TOOL arguments]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node, as
# for mmdet/mmseg. PYTHON defaults to the project's .venv when there is one.
# Without CUDA each process is a CPU worker (gloo; see
# stvit_mm/apis/machine.py).
set -euo pipefail
TOOL=$1
NPROC=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" \
    --master_port="${PORT:-29500}" \
    "$ROOT/tools/$TOOL" "${@:3}" --launcher pytorch
