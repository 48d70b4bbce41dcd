#!/usr/bin/env bash
# Installs the pinned OpenMMLab stack (requirements.txt) and this package into .venv/.
#
# mmcv 2.1.0 has no wheel for torch 2.14, so it is compiled from its sdist with the
# CPU ops (about 12 min on 2 cores). The built wheel is cached outside the repo, keyed by
# the torch version and Python tag it was compiled against, so later installs on the
# same machine reuse it in seconds. Safe to run again: it only does what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STVIT_MM_VENV:-$ROOT/.venv}"
CACHE="${STVIT_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stvit_mm}"
PINS="$ROOT/requirements.txt"
PYTHON="${PYTHON:-python3.11}"

log() { printf '[install] %3dm%02ds %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
pin() { grep -E "^$1[=<>]" "$PINS" | head -n1; }

command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "[install] Python 3.11 is required (found $("$PYTHON" --version))." >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

# torch first: everything else, mmcv's compiled ops above all, is built against it.
# torchvision with it, so that pip never swaps torch for another build to satisfy it later.
log "torch, torchvision and build tools"
"${PIP[@]}" "$(pin torch)" "$(pin torchvision)" "$(pin setuptools)" "$(pin numpy)" ninja psutil wheel

torch_ver="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
py_tag="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
mmcv_pin="$(pin mmcv)"
mmcv_ver="${mmcv_pin#mmcv==}"
wheel_dir="$CACHE/wheels/mmcv-${mmcv_ver}-torch${torch_ver}-${py_tag}"

mmcv_ok() {
  "$PY" - <<PYEOF 2>/dev/null
import importlib.metadata as md, mmcv, mmcv._ext  # _ext is the compiled ops
assert md.version('mmcv') == '${mmcv_ver}'
PYEOF
}

if mmcv_ok; then
  log "mmcv ${mmcv_ver} with ops already installed"
else
  if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv ${mmcv_ver} with CPU ops for torch ${torch_ver}/${py_tag} (about 12 minutes on 2 cores)"
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")"
    # torch >= 2.14's headers refuse anything below C++20 ("C++20 or later compatible compiler
    # is required to use ATen"), and mmcv 2.1.0's setup.py hard-codes -std=c++17 for its CPU ops
    # (passed after any CXXFLAGS, so it wins): build from the sdist with that one flag raised.
    "$PY" -m pip download --disable-pip-version-check -q --no-cache-dir --no-deps \
      --no-binary :all: --no-build-isolation -d "$tmp" "$mmcv_pin"
    tar -xzf "$tmp"/mmcv-*.tar.gz -C "$tmp"
    src="$(ls -d "$tmp"/mmcv-*/)"
    sed -i "s/'-std=c++17'/'-std=c++20'/" "$src/setup.py"
    grep -q "'-std=c++20'" "$src/setup.py" \
      || { echo "[install] could not raise mmcv's C++ standard in $src/setup.py" >&2; exit 1; }
    # --no-build-isolation: the isolated build env has no torch, and mmcv then silently skips its ops.
    # --no-cache-dir: pip's own wheel cache is keyed by the sdist, not by the torch it was built
    # against, so it could hand back ops compiled for another torch; our cache above is keyed by both.
    # -g0: Python's CFLAGS carry -g, and debug info for torch's template-heavy headers is a large
    # share of each file's compile time; the ops' code is the same without it.
    CFLAGS="${CFLAGS:-} -g0" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel --disable-pip-version-check \
      --no-cache-dir --no-build-isolation --no-deps -w "$tmp" "$src"
    mkdir -p "$wheel_dir"
    # Move into place only once complete, so an interrupted build never leaves a bad cache entry.
    mv "$tmp"/mmcv-*.whl "$wheel_dir"/
    rm -rf "$tmp"
  else
    log "reusing cached $(ls "$wheel_dir"/mmcv-*.whl)"
  fi
  # With its dependencies (opencv, addict, ...), held to the pins.
  "${PIP[@]}" --force-reinstall --no-deps "$wheel_dir"/mmcv-*.whl
  "${PIP[@]}" -c "$PINS" "$wheel_dir"/mmcv-*.whl
  mmcv_ok || { echo "[install] mmcv installed but its compiled ops do not load; delete $wheel_dir and retry." >&2; exit 1; }
fi

log "the rest of the stack and stvit_mm (editable)"
"${PIP[@]}" -r "$PINS" -e "$ROOT"
"$PY" -c 'import mmcv.ops, mmdet, mmseg, torchvision.ops, mmpretrain.models, stvit_mm' \
  || { echo "[install] the stack installed but does not import; see the error above." >&2; exit 1; }
touch "$VENV/.stvit_mm_installed"
log "done: $("$PY" -c 'import torch, torchvision, mmcv, mmdet, mmseg, mmpretrain, mmengine; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}")')"
