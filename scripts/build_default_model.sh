#!/usr/bin/env bash
# Rebuilds the shipped default model from scratch: MCTS-P collection on the 29 training families, the held-out
# tasks of those families (seeds 16-20) and the two held-out family sets (6 + 5 families; MiniWoB++ in headless
# Chromium), Triple-M training, evaluation with baselines, and a copy into similar_rl/default_model/. About 100
# minutes on 2 cores; rerunning resumes the collections.
#   bash scripts/build_default_model.sh            (after `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
BIN=.venv/bin
OUT=${OUT:-runs/default_model}
$BIN/similar-rl collect --config configs/collect_default_train.yaml --out data/default_train
$BIN/similar-rl collect --config configs/collect_default_heldout_tasks.yaml --out data/default_heldout_tasks
$BIN/similar-rl collect --config configs/collect_default_heldout.yaml --out data/default_heldout
$BIN/similar-rl collect --config configs/collect_default_heldout2.yaml --out data/default_heldout2
$BIN/similar-rl train --config configs/train_cpu_default.yaml --data data/default_train \
  --eval-data data/default_heldout_tasks --out "$OUT"
$BIN/similar-rl eval --model "$OUT" --data data/default_heldout_tasks --baselines --json "$OUT/eval_heldout_tasks.json"
$BIN/similar-rl eval --model "$OUT" --data data/default_heldout --baselines --json "$OUT/eval_heldout.json"
$BIN/similar-rl eval --model "$OUT" --data data/default_heldout2 --baselines --json "$OUT/eval_heldout2.json"
cp "$OUT"/{config.json,model.safetensors,train_config.yaml,train_summary.json} similar_rl/default_model/
cp "$OUT"/eval_heldout{_tasks,,2}.json similar_rl/default_model/
echo "default model rebuilt in similar_rl/default_model/ (update its README.md model card from $OUT/eval_heldout*.json)"
