#!/usr/bin/env bash
# Collects the data of the next default model (MiniWoB++ in headless Chromium): the training set (3 rollouts per
# child) and the two held-out sets (5 rollouts per child), each fixed in configs/ before any model is trained.
# Every collection resumes where it stopped: rerun this script after a kill or a session's end. The wall time of
# each run is appended to data/v2_walltimes.tsv (a resumed collection adds one line per run, marked
# done or stopped).
#   bash scripts/build_data_v2.sh                      (after `make setup`; every phase in order)
#   bash scripts/build_data_v2.sh heldout_tasks ...    (only the named phases, in the order given)
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
# Order: the first ten training seeds of every family, then both held-out sets, then the remaining training seeds,
# so a usable train/held-out triple exists long before the whole training set is done.
phase() {  # phase LABEL SET [collect flags...]
  name=$1; start=$(date +%s)
  # exit 1 means some task failed (recorded in failures.jsonl; a rerun retries it): go on to the next phase
  if $BIN/similar-rl collect --config "configs/collect_v2_$2.yaml" --out "data/v2_$2" \
    --json "data/v2_$2.summary.json" "${@:3}"; then record done; else record "exit $?"; fi
}
run() {  # run PHASE: one of train_0-9, heldout_tasks, heldout_families, train
  case $1 in
    train_0-9) phase "train seeds 0-9" train --seeds 0-9 ;;
    heldout_tasks | heldout_families | train) phase "$1" "$1" ;;
    *) echo "unknown phase '$1' (train_0-9, heldout_tasks, heldout_families, train)" >&2; exit 2 ;;
  esac
}
if [ $# -eq 0 ]; then set -- train_0-9 heldout_tasks heldout_families train; fi
for p in "$@"; do run "$p"; done
echo "v2 phases finished: $*"
