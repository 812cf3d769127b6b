#!/usr/bin/env bash
# Issue 13's whole-command targets, on this machine, with the built-in model:
#  - `deblur predict` of one 12 MP photo (4000x3000), start-up included, with the .keras file and with
#    each export of it (wall time and peak RSS from /usr/bin/time -v, best of RUNS);
#  - the same for a 24 MP photo (6000x4000), tiled as deblur predict does by default (one run).
# The photo is ../shared/data/photos/<PHOTO> resized with OpenCV (INTER_CUBIC), the export is made by
# `deblur export` (checked against Keras before it is kept). Run it on a quiet machine:
#   bash scripts/bench_predict_formats.sh [OUT_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/bench_predict_formats}
runs=${2:-2}
photo=${PHOTO:-../shared/data/photos/Bridge_by_Sander_Klootwijk.jpg}
py=.venv/bin/python
deblur=.venv/bin/deblur
mkdir -p "$out"
for mp in 12 24; do
  [ -f "$out/photo_${mp}mp.png" ] || $py -c "
import cv2, sys
im = cv2.imread(sys.argv[1]); w, h = {'12': (4000, 3000), '24': (6000, 4000)}[sys.argv[2]]
cv2.imwrite(sys.argv[3], cv2.resize(im, (w, h), interpolation=cv2.INTER_CUBIC))" "$photo" "$mp" "$out/photo_${mp}mp.png"
done
models=(keras)
for fmt in onnx openvino litert; do
  ext=$(case $fmt in onnx) echo onnx;; openvino) echo xml;; litert) echo tflite;; esac)
  if [ ! -f "$out/default.$ext" ]; then
    $deblur export --format "$fmt" --output "$out/default.$ext" > "$out/export_$fmt.log" 2>&1 || { echo "export $fmt failed: $(tail -1 "$out/export_$fmt.log")"; continue; }
  fi
  models+=("$fmt")
done
printf "%-9s %-6s %10s %12s\n" engine photo "wall s" "peak RSS MB"
for mp in 12 24; do
  for m in "${models[@]}"; do
    case $m in keras) ckpt=();; onnx) ckpt=(--checkpoint "$out/default.onnx");; openvino) ckpt=(--checkpoint "$out/default.xml");; litert) ckpt=(--checkpoint "$out/default.tflite");; esac
    best=""; rss=""
    n=$runs; [ "$mp" = 24 ] && n=1  # the 24 MP photo is for peak memory (one run) and a time check
    for _ in $(seq "$n"); do
      /usr/bin/time -v -o "$out/time.txt" $deblur predict "$out/photo_${mp}mp.png" "${ckpt[@]}" --output "$out/restored_$m" --overwrite > "$out/predict_$m.log" 2>&1
      wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$out/time.txt")
      kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time.txt")
      if [ -z "$best" ] || awk "BEGIN {exit !($wall < $best)}"; then best=$wall; fi
      if [ -z "$rss" ] || [ "$kb" -gt "$rss" ]; then rss=$kb; fi
    done
    printf "%-9s %-6s %10.1f %12d\n" "$m" "${mp}MP" "$best" $((rss / 1024))
  done
done
