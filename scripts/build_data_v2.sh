#!/usr/bin/env bash
# Collects the data of the next default model (MiniWoB++ in headless Chromium): the training set (3 rollouts per
# child) and the two held-out sets (5 rollouts per child), each fixed in configs/ before any model is trained.
# Every collection resumes where it stopped: rerun this script after a kill or a session's end. The wall time of
# each run is appended to data/v2_walltimes.tsv (a resumed collection adds one line per run, marked
# done or stopped).
#   bash scripts/build_data_v2.sh            (after `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
BIN=.venv/bin
mkdir -p data
# One line per run: set, end time, seconds, and "done" or "stopped" (a killed run still records its time).
name=""; start=0
record() {
  if [ -n "$name" ]; then
    printf '%s\t%s\t%s\t%s\n' "$name" "$(date -u +%FT%TZ)" "$(( $(date +%s) - start ))" "$1" >> data/v2_walltimes.tsv
  fi
  name=""
}
trap 'record stopped' EXIT
trap 'exit 143' TERM INT
for name in train heldout_tasks heldout_families; do
  start=$(date +%s)
  $BIN/similar-rl collect --config "configs/collect_v2_${name}.yaml" --out "data/v2_${name}" \
    --json "data/v2_${name}.summary.json"
  record done
done
echo "v2 data complete: data/v2_train, data/v2_heldout_tasks, data/v2_heldout_families"
