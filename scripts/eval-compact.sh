#!/usr/bin/env bash
# Evaluates a compact model on the clips of scripts/make-eval-clips.sh, as in the model card (models/README.md):
# per clip the model with CFR (the video pipeline), the same network frame by frame without CFR (--no-temporal), and
# bicubic (from --lr), then `dloral eval-summary` averages the per-clip reports.
#   scripts/eval-compact.sh [MODEL] [CLIPS_DIR] [OUT_DIR] [EXTRA UPSCALE OPTIONS...]
#   (defaults: compact eval/clips eval/compact)
#   FRAME_BY_FRAME=0 skips the --no-temporal run (half the time, for quick comparisons of the video path).
#   EVAL_OPTS="--no-temporal --no-feature-distance" passes options to `dloral eval` (PSNR/SSIM only: minutes faster).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-compact}"
clips="${2:-$repo/eval/clips}"
out="${3:-$repo/eval/compact}"
shift $(( $# < 3 ? $# : 3 ))
dloral="${DLORAL:-$repo/dloral}"   # DLORAL=path runs another build (e.g. while bin/ is rebuilt)
ls "$clips"/*.lr.mkv >/dev/null 2>&1 || { echo "error: no *.lr.mkv clips in $clips (run scripts/make-eval-clips.sh)" >&2; exit 2; }
mkdir -p "$out"
reports=()
for lr in "$clips"/*.lr.mkv; do
  name="$(basename "$lr" .lr.mkv)"
  gt="$clips/$name.gt.mkv"
  [ -f "$out/$name/compact.mkv" ] || { mkdir -p "$out/$name"; "$dloral" upscale "$lr" -o "$out/$name/compact.mkv" --model "$model" --codec ffv1 -q "$@"; }
  candidates=("$out/$name/compact.mkv")
  if [ "${FRAME_BY_FRAME:-1}" != 0 ]; then
    [ -f "$out/$name/compact-no-cfr.mkv" ] || "$dloral" upscale "$lr" -o "$out/$name/compact-no-cfr.mkv" --model "$model" --codec ffv1 --no-temporal -q "$@"
    candidates+=("$out/$name/compact-no-cfr.mkv")
  fi
  [ -f "$out/$name/report/report.json" ] || "$dloral" eval "${candidates[@]}" --gt "$gt" --lr "$lr" -o "$out/$name/report" -q ${EVAL_OPTS:-}
  reports+=("$out/$name/report")
  echo "$name done"
done
"$dloral" eval-summary "${reports[@]}" -o "$out/summary.md" -y
cat "$out/summary.md"
