#!/usr/bin/env bash
# Fault drill: train a tiny model, kill it with SIGKILL in the middle of an epoch, resume it, and
# check that the run ends with the planned number of epochs and a checkpoint that loads and scores.
#   bash scripts/fault_drill.sh            (uses .venv/bin/deblur, or DEBLUR=... to choose)
set -euo pipefail
cd "$(dirname "$0")/.."
DEBLUR=${DEBLUR:-.venv/bin/deblur}
PY=${PY:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run="$work/run"
epochs=4

cat > "$work/drill.yaml" <<YAML
name: drill
seed: 7
data:
  source: samples
  crop: 48
  eval_crop: 96
  crops_per_image: 24
  batch_size: 8
  degradation: {kind: gaussian, sigma: [0.5, 2.5]}
model: {type: unet, depth: 2, base_filters: 8, residual: true}
train: {epochs: $epochs, learning_rate: 0.002}
YAML

epochs_done() { if [ -f "$run/history.csv" ]; then echo $(( $(wc -l < "$run/history.csv") - 1 )); else echo 0; fi; }

echo "drill: training $epochs epochs in $run"
setsid "$DEBLUR" train -c "$work/drill.yaml" --run-dir "$run" > "$work/first.log" 2>&1 &
pid=$!
until [ "$(epochs_done)" -ge 2 ]; do
  kill -0 "$pid" 2>/dev/null || { echo "drill: training ended early"; cat "$work/first.log"; exit 1; }
  sleep 0.05
done
sleep 0.3
kill -KILL -- "-$pid"
wait "$pid" 2>/dev/null || true
echo "drill: SIGKILL during epoch 3; epochs completed before the kill: $(epochs_done)"
ls "$run"

echo "drill: resuming"
"$DEBLUR" train --run-dir "$run" --resume 2>&1 | grep -E "resuming|Epoch [0-9]+/|trained|blurred input|model \(unet\) |->" || true
done_epochs=$(epochs_done)
echo "drill: epochs in history.csv after resume: $done_epochs (expected $epochs)"
[ "$done_epochs" -eq "$epochs" ] || { echo "drill: FAILED"; exit 1; }
"$PY" - "$run" 2> "$work/load.err" <<'PY' || { cat "$work/load.err"; echo "drill: FAILED"; exit 1; }
import sys
from deblur.restore.loading import load_model
model = load_model(f"{sys.argv[1]}/best.keras")
print(f"drill: best.keras loads ({model.count_params():,} parameters)")
PY
"$DEBLUR" eval "$run/best.keras" --baselines identity --output "$work/eval" | grep -E "blurred input|model \(unet\) |->"
echo "drill: PASSED"
