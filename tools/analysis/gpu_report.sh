#!/usr/bin/env bash
# The GPU table of the README in one run: correctness of STViT-R-Swin on CUDA
# against the CPU (tools/analysis/device_check.py), then backbone speed and
# memory against mmdet's Swin (tools/analysis/benchmark.py: inference in
# fp32/fp16/bf16, the training step, kernel profiles). Run from the repo root
# on a CUDA machine:  bash tools/analysis/gpu_report.sh
# For a machine without network or OpenMMLab (the project's lent H200: Python
# 3.12, torch, no mmengine/mmcv/mmdet), put the stack's py3.12 wheels, the
# mmcv-2.1.0 sdist and optionally a prebuilt mmcv wheel (.whl/mmcv/) in .whl/
# (see the README's GPU section); where the stack is installed, .whl/ may be
# empty. Parts, each guarded so that a failure or a slow part leaves
# the others' results:
#   1. install the wheels into /tmp/site; mmcv with CPU ops: the prebuilt
#      wheel if its ops load, else built from the sdist in the background
#      (GPU hidden, 16 jobs) while part 3 runs on mmcv's Python modules;
#   2. nvidia-smi, versions;
#   3. correctness: tools/analysis/device_check.py (needs no mmcv ops), with
#      'auto' (the gather on CUDA) and again with neighbourhood_impl
#      key_windows;
#   4. speed: every neighbourhood backend that runs on CUDA (key_windows,
#      gather; strips are CPU-only) against Swin-S, fp32 and bf16, inference
#      and training step, 800x1333 at batch 2 and 8, peak memory included:
#      the figures that settle 'auto' on CUDA (CUDA_BACKEND in
#      stvit_mm/models/layers/neighbourhood_attention.py, see
#      docs/attention_backends.md); then benchmark.py S (inference), train
#      step, profiles, B.
# Everything goes to $OUT (<= 12 files) and to stdout.
set -uo pipefail
export PYTHONUNBUFFERED=1
export PYTHONWARNINGS='ignore::SyntaxWarning,ignore:pkg_resources is deprecated'
OUT=${OUT:-/tmp/gpu_out}
DEADLINE=${DEADLINE:-540}   # seconds this script may take in all (run timeout_s 570)
# Settings (a CPU dry run elsewhere: DEV=cpu with tiny sizes, see the end).
DEV=${DEV:-cuda}
DC_SIZES=${DC_SIZES:-800x1216 512x512}   # device_check, batch 2
DC_ARGS=${DC_ARGS:-}                     # e.g. --override '{...}'
SIZES=${SIZES:-800x1333 512x512}         # benchmark
BATCHES=${BATCHES:-1 8}
TRAIN_SIZE=${TRAIN_SIZE:-800x1333}       # benchmark --train, batch 2
PROF_SIZE=${PROF_SIZE:-800x1333}         # profiles, batch 8
NB_SIZE=${NB_SIZE:-800x1333}             # backends, batches 2 and 8
NB_BATCHES=${NB_BATCHES:-2 8}
NB_IMPLS=${NB_IMPLS:-key_windows gather}  # strips: CPU only
WARMUP=${WARMUP:-3}
REPEAT=${REPEAT:-20}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
T0=$SECONDS
step() { echo; echo "=== [$((SECONDS - T0)) s] $*"; }
left() { echo $((DEADLINE - (SECONDS - T0) - 10)); }
# run_part NAME OUTFILE MAX_SECONDS CMD...: time-boxed (by the deadline too),
# output to the terminal and to $OUT/OUTFILE.
run_part() {
  local name=$1 file=$2 max=$3; shift 3
  local t; t=$(left); [ "$t" -gt "$max" ] && t=$max
  if [ "$t" -lt 20 ]; then step "SKIP $name: no time left"; return 1; fi
  step "$name (at most ${t} s): $*"
  timeout -k 5 "$t" "$@" 2>&1 | tee "$OUT/$file"
  local rc=${PIPESTATUS[0]}
  step "$name: exit $rc$([ "$rc" = 124 ] && echo ' (TIMED OUT)')"
}

BUILD_PID=
if ! ls .whl/*.whl >/dev/null 2>&1; then
  step "no .whl/: using the installed OpenMMLab stack"
  export PYTHONPATH=$PWD
else
step "install carried wheels"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl || { echo "wheel install FAILED"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
if ! python3 -c 'import pkg_resources' 2>/dev/null; then
  echo "no pkg_resources (setuptools >= 82?): using the carried setuptools 81"
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site_st .whl/opt/setuptools-*.whl
  export PYTHONPATH=/tmp/site_st:$PYTHONPATH
fi
SITE=$PYTHONPATH

step "mmcv 2.1.0 with CPU ops"
ops_ok() { CUDA_VISIBLE_DEVICES= python3 -c 'import mmcv, mmcv._ext, mmcv.ops; print("mmcv", mmcv.__version__, "ops ok")'; }
MMCV_DIR=/tmp/mmcv_prebuilt
BUILD_PID=
python3 -m pip install -q --no-index --no-deps --no-compile --target "$MMCV_DIR" .whl/mmcv/mmcv-2.1.0-*.whl \
  && PYTHONPATH=$MMCV_DIR:$SITE ops_ok
if [ $? -ne 0 ]; then
  echo "prebuilt mmcv unusable: building from the sdist in the background"
  mkdir -p /tmp/mmcv_src && tar xzf .whl/mmcv-2.1.0.tar.gz -C /tmp/mmcv_src
  MMCV_DIR=/tmp/mmcv_src/mmcv-2.1.0
  python3 -c 'import sysconfig, os; p = sysconfig.get_paths()["include"]; print("Python.h:", os.path.exists(p + "/Python.h"), p)'
  which g++ c++ ninja || true
  ( cd "$MMCV_DIR" && CUDA_VISIBLE_DEVICES= FORCE_CUDA=0 MMCV_WITH_OPS=1 MAX_JOBS=16 \
      timeout 300 python3 setup.py build_ext --inplace > "$OUT/mmcv_build.log" 2>&1 ) &
  BUILD_PID=$!
fi
export PYTHONPATH=$MMCV_DIR:$SITE
fi

step "machine"
nvidia-smi || true
nproc; free -g | head -2
python3 - <<'EOF' || true
import torch, numpy, mmengine, mmcv, mmdet, mmseg, mmpretrain
print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN',
      torch.backends.cudnn.version(), 'threads', torch.get_num_threads())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
print('numpy', numpy.__version__, 'mmengine', mmengine.__version__, 'mmcv',
      mmcv.__version__, 'mmdet', mmdet.__version__, 'mmseg',
      mmseg.__version__, 'mmpretrain', mmpretrain.__version__)
import stvit_mm
print('stvit_mm imports')
EOF

# 3. Correctness (CPU reference on 16 threads; no mmcv ops needed).
run_part "device_check STViT-R-Swin-S" device_check.md 200 \
  python3 tools/analysis/device_check.py --device "$DEV" --threads 16 \
    --sizes $DC_SIZES --batch 2 $DC_ARGS --out "$OUT/device_check.json"

run_part "device_check key_windows" device_check_kw.md 90 \
  python3 tools/analysis/device_check.py --device "$DEV" --threads 16 \
    --sizes ${DC_SIZES%% *} --batch 2 \
    --override "{\"neighbourhood_impl\": \"key_windows\"}" \
    --out "$OUT/device_check_kw.json"

if [ -n "$BUILD_PID" ]; then
  step "waiting for the mmcv build"
  wait "$BUILD_PID"; echo "build exit $?"; tail -5 "$OUT/mmcv_build.log"
fi
ops_ok || echo "mmcv ops MISSING: the benchmark (mmdet.models) will fail"

# 4. Speed. S first, then the training step and the profiles, B last.
BENCH=(python3 tools/analysis/benchmark.py --devices "$DEV" --threads 16
       --warmup "$WARMUP" --repeat "$REPEAT")
run_part "backends inference" bench_backends.md 100 "${BENCH[@]}" \
  --models S --sizes "$NB_SIZE" --batch-sizes $NB_BATCHES --dtypes fp32 bf16 \
  --neighbourhood-impl $NB_IMPLS
run_part "backends training step" bench_backends_train.md 100 "${BENCH[@]}" \
  --models S --sizes "$NB_SIZE" --batch-sizes $NB_BATCHES --dtypes fp32 bf16 \
  --neighbourhood-impl $NB_IMPLS --train
run_part "benchmark S inference" bench_S.md 170 "${BENCH[@]}" --models S \
  --sizes $SIZES --batch-sizes $BATCHES --dtypes fp32 fp16 bf16
run_part "benchmark training step" bench_train.md 100 "${BENCH[@]}" \
  --models S B --sizes "$TRAIN_SIZE" --batch-sizes 2 --dtypes bf16 fp16 --train
run_part "profiles S bf16 x8" profile.md 70 "${BENCH[@]}" --models S \
  --sizes "$PROF_SIZE" --batch-sizes 8 --dtypes bf16 --no-memory --profile 25
run_part "benchmark B inference" bench_B.md 200 "${BENCH[@]}" --models B \
  --sizes $SIZES --batch-sizes $BATCHES --dtypes fp32 fp16 bf16

step "summary"
for f in device_check.md device_check_kw.md bench_backends.md \
    bench_backends_train.md bench_S.md bench_train.md bench_B.md; do
  echo "--- $f"; grep '^|\|PASSED\|FAILED\|^Setting\|Error' "$OUT/$f" 2>/dev/null
done
ls "$OUT"
step "done"
sleep 1  # let tee finish the log
# CPU dry run (python3 = a Python 3.12 with torch first on PATH):
# DEV=cpu DC_SIZES=64x96 DC_ARGS="--override {\"embed_dims\":16,\"num_heads\":[1,2,4,8]} --dtypes bf16" \
#   SIZES=64x64 BATCHES=1 TRAIN_SIZE=64x64 PROF_SIZE=64x64 WARMUP=0 REPEAT=1 bash .gpu/run.sh
