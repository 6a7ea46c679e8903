#!/usr/bin/env bash
# GPU check of siamtrack in ONE call of the `device` tool's `run` (an H200 machine whose python3 already has a
# CUDA PyTorch, numba, onnxruntime and opencv-python-headless; nothing can be fetched there). Under 5 minutes:
# installs the carried wheels, runs every `device`-fixture test on cuda, times tracker-only fps for one target
# for every shipped model and the carried NanoTrack state dicts (tools/speed.py --device cuda), 1 and 64 targets
# in one MultiTracker (tools/multi_bench.py), and the engine's host<->device copies; writes $OUT/gpu_check.json,
# $OUT/gpu_check.md and $OUT/gpu_check.log, rewritten after every step so a run cut short still reports.
# It measures the simple eager path: no CUDA graphs, no torch.compile.
#
# 1. Here, where pip works (needs ../shared beside the checkout):   bash tools/gpu_check.sh --prepare
#    fills the git-ignored .gpu_carry/: wheels of what the machine lacks, vot_car1 and Bolt, the NanoTrack
#    state dicts.
# 2. The device call (exactly this):
#      run(command="PYTHONUNBUFFERED=1 bash tools/gpu_check.sh", carry=[".gpu_carry"], timeout_s=360)
#    then read gpu_check.md under the reply's files_at, and give_back unless you rerun at once.
# On any machine, to see the steps and the report without running them:
#      bash tools/gpu_check.sh --dry-run --out DIR
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
CARRY="$REPO/.gpu_carry"
SHARED="$REPO/../shared"
PURE_WHEELS=(got10k==0.1.3 fire==0.7.1 termcolor==3.3.0 wget==3.2)  # got10k and its needs the machine lacks
BINARY_WHEELS=(shapely==2.2.0)  # for the machine's CPython 3.12 on x86-64
SEQUENCES=(vot_car1 Bolt)  # speed runs on vot_car1; tests/test_export.py's real-sequence parity uses Bolt
BOX_MODELS=(nanotrack_v2/nanotrack_v2_state_dict.pth nanotrack_v3/nanotrack_v3_state_dict.pth)

prepare() {
    rm -rf "$CARRY"
    mkdir -p "$CARRY/wheels" "$CARRY/shared/data/sequences"
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CARRY/wheels" "${BINARY_WHEELS[@]}"
    "$PYTHON" -m pip wheel -q --no-deps -w "$CARRY/wheels" "${PURE_WHEELS[@]}"
    for seq in "${SEQUENCES[@]}"; do
        if [[ -d "$SHARED/data/sequences/$seq" ]]; then
            cp -r "$SHARED/data/sequences/$seq" "$CARRY/shared/data/sequences/"
        else
            echo "gpu_check: $SHARED/data/sequences/$seq not found; its steps will be skipped" >&2
        fi
    done
    for model in "${BOX_MODELS[@]}"; do
        if [[ -f "$SHARED/reference/$model" ]]; then
            mkdir -p "$CARRY/shared/reference/$(dirname "$model")"
            cp "$SHARED/reference/$model" "$CARRY/shared/reference/$model"
        else
            echo "gpu_check: $SHARED/reference/$model not found; the box family is not timed" >&2
        fi
    done
    chmod -R u+w "$CARRY"  # ../shared is read-only; a later --prepare must be able to remove the copies
    echo "gpu_check: $CARRY holds $(du -sm "$CARRY" | cut -f1) MiB; now call the device tool with"
    echo '  run(command="PYTHONUNBUFFERED=1 bash tools/gpu_check.sh", carry=[".gpu_carry"], timeout_s=360)'
}

case "${1:-}" in
    --prepare)
        prepare
        ;;
    --dry-run)
        shift
        exec "$PYTHON" "$REPO/tools/gpu_check.py" run --dry-run "$@"
        ;;
    --help | -h)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        ;;
    *)
        if [[ -z "${OUT:-}" && "$*" != *--out* ]]; then
            echo "gpu_check: set OUT or pass --out DIR for the report" >&2
            exit 2
        fi
        exec "$PYTHON" "$REPO/tools/gpu_check.py" run ${OUT:+--out "$OUT"} "$@"
        ;;
esac
