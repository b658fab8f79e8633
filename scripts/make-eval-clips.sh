#!/usr/bin/env bash
# Makes the compact model's evaluation clips from held-out photos: per photo a 1280x720 ground-truth clip with a smooth
# camera pan (ffmpeg, lossless FFV1), and its x4-degraded 320x180 input (`dloral degrade` with the training
# degradation, a fixed seed per clip). Photos smaller than 1280x720 are skipped.
#   scripts/make-eval-clips.sh [PHOTOS] [OUT_DIR] [FRAMES]    (defaults: configs/eval-photos.txt eval/clips 12)
# PHOTOS is a list file (one photo per line, a path or a file name in data/photos; '#' comments) — the default is the
# model card's list — or a training run's folder, whose validation_files.txt (written by `dloral train`) lists what it held out.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
photos="${1:-$repo/configs/eval-photos.txt}"
out="${2:-$repo/eval/clips}"
frames="${3:-12}"
list="$photos"
[ -d "$photos" ] && list="$photos/validation_files.txt"
[ -f "$list" ] || { echo "error: $list not found (a list of photos, or a run folder of 'dloral train': it lists the held-out photos)" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "error: ffmpeg not found (scripts/ensure-ffmpeg.sh)" >&2; exit 2; }
dloral="$repo/dloral"
mkdir -p "$out"
# Pan speeds in HR pixels per frame (x, y), one per clip in turn: slow to brisk, every direction.
speeds=("3 1" "-2 2" "4 -1" "1 3" "-3 -2" "2 0" "0 -3" "-4 1")
i=0
while IFS= read -r photo; do
  photo="${photo%%#*}"; photo="${photo%"${photo##*[![:space:]]}"}"
  [ -n "$photo" ] || continue
  [[ "$photo" == */* ]] || photo="$repo/data/photos/$photo"
  [ -f "$photo" ] || { echo "error: photo $photo not found (scripts/fetch-photos.sh fetches them)" >&2; exit 2; }
  # Only photos that hold a 1280x720 frame natively: an upscaled photo is no ground truth for x4 SR.
  read -r w h < <(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0 "$photo" | tr ',' ' ')
  if [ "$w" -lt 1280 ] || [ "$h" -lt 720 ]; then echo "skip: $(basename "$photo") is ${w}x${h}, smaller than 1280x720"; continue; fi
  name="clip$(printf %02d "$i")"
  read -r vx vy <<<"${speeds[$((i % ${#speeds[@]}))]}"
  # Cover 1707x960 whatever the aspect, then pan a 1280x720 window around the centre.
  vf="scale='if(gt(a,16/9),-2,1707)':'if(gt(a,16/9),960,-2)':flags=lanczos,crop=1280:720:x='(iw-1280)/2+${vx}*(n-${frames}/2)':y='(ih-720)/2+${vy}*(n-${frames}/2)',format=bgr0"
  if [ ! -f "$out/$name.gt.mkv" ]; then
    ffmpeg -nostdin -loglevel error -y -loop 1 -framerate 25 -i "$photo" -vf "$vf" -frames:v "$frames" -c:v ffv1 "$out/$name.gt.partial.mkv"
    mv "$out/$name.gt.partial.mkv" "$out/$name.gt.mkv"
  fi
  if [ ! -f "$out/$name.lr.mkv" ]; then
    "$dloral" degrade "$out/$name.gt.mkv" -o "$out/$name.lr.mkv" -p "$repo/configs/degradations/compact.json" --seed $((1000 + i)) -q
  fi
  echo "$name: $(basename "$photo") pan ($vx,$vy) px/frame"
  i=$((i + 1))
done < "$list"
echo "$i clip(s) in $out"
