#!/usr/bin/env bash
# The confirmatory measurement of R1–R4 (docs/experiments.md, "The confirmatory measurement"), resumable across
# sessions. Its plans are results/confirmatory/<experiment>/plan.json, committed before any of its runs.
#
#   bash scripts/confirmatory.sh train [planned|cheapest-first]
#                                         # in the background: HEAD's code (a git worktree of it, so that edits to this
#                                         # checkout cannot reach the runs), two runs at a time, one thread each;
#                                         # finished runs recorded in results/confirmatory/store are not trained again.
#                                         # A run that has not finished when the session ends is lost: start the
#                                         # long ones (planned order: I-JEPA first) with a whole session ahead, and
#                                         # cheapest-first (MAE first) when less than about 100 minutes remain
#   bash scripts/confirmatory.sh stop     # before a session ends: every run in training checkpoints at its current
#                                         # step (SIGUSR2), nothing else starts; returns once training has ended
#   bash scripts/confirmatory.sh save     # copy the finished, evaluated runs' light files into
#                                         # results/confirmatory/store (then commit them)
#   bash scripts/confirmatory.sh status   # each planned run's state, the step it resumes from, the training time left
#   bash scripts/confirmatory.sh decide   # once every run is recorded: results, summaries and figures from this
#                                         # checkout's committed code (nothing is trained)
#   bash scripts/confirmatory.sh plan     # the plans (results/<measurement>/<experiment>/plan.json) to commit
#                                         # before any run of the measurement trains
#
# JEPALAB_CONFIRMATORY=retrained selects R2's re-measurement instead (results/confirmatory-retrained): the 16 clean
# runs trained again under the same plan, because the evaluation that ran on the first ones skipped their subspace
# read-out (docs/experiments.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
case "${JEPALAB_CONFIRMATORY:-main}" in
  main) EXPERIMENTS=(noisy-features variance-subspaces depth learning-order); OUT=results/confirmatory
        STORE=${JEPALAB_CONFIRMATORY_STORE:-/work/confirmatory-store} ;;
  retrained) EXPERIMENTS=(variance-subspaces); OUT=results/confirmatory-retrained
             STORE=${JEPALAB_CONFIRMATORY_STORE:-/work/confirmatory-retrained-store} ;;
  *) echo "JEPALAB_CONFIRMATORY must be main or retrained" >&2; exit 2 ;;
esac
SETTINGS=("${EXPERIMENTS[@]}" --standard epochs=24 "seeds=[3,4,5,6,7,8,9,10]"
          "snapshot_steps=[312,936]" gate=noise statistics=interval confirmatory=true eval.precision=run
          eval.random_init=run eval.cache_pixels=true eval.subspace=clean order_basis=cross order_eps=1e-5
          "power_from=[results/epochs-24,results]" --out "$OUT")
JEPALAB="$ROOT/.venv/bin/python -m jepalab"

case "${1:-}" in
  train)
    if pgrep -f "jepalab experiment .*runs_dir=$STORE" >/dev/null; then
      echo "confirmatory training is already running (bash scripts/confirmatory.sh status; stop it first to restart)"
      exit 1
    fi
    revision=$(git rev-parse HEAD)
    tree="$ROOT/../confirmatory-$revision"
    [ -d "$tree" ] || git worktree add --detach "$tree" "$revision"
    mkdir -p "$STORE"
    cd "$tree"
    OMP_NUM_THREADS=1 PYTHONPATH="$tree/src" nohup $JEPALAB experiment "${SETTINGS[@]}" "runs_dir=$STORE" --jobs 2 \
      --order "${2:-planned}" > "$STORE/train-$revision.log" 2>&1 &
    echo "training at $revision in $tree (pid $!); log: $STORE/train-$revision.log"
    ;;
  stop)
    pids=$(pgrep -f "jepalab experiment .*runs_dir=$STORE" || true)
    [ -n "$pids" ] || { echo "no confirmatory training is running"; exit 0; }
    kill -USR2 $pids
    while kill -0 $pids 2>/dev/null; do sleep 2; done
    echo "stopped: every run in training was checkpointed at its last step (\`train\` resumes them)"
    ;;
  save) $JEPALAB experiment "${SETTINGS[@]}" "runs_dir=$STORE" --save-finished ;;
  status) $JEPALAB experiment "${SETTINGS[@]}" "runs_dir=$STORE" --progress ;;
  decide) OMP_NUM_THREADS=1 $JEPALAB experiment "${SETTINGS[@]}" "runs_dir=$STORE" --jobs 1 ;;
  plan) $JEPALAB experiment "${SETTINGS[@]}" --plan ;;
  *) echo "usage: bash scripts/confirmatory.sh train|status|stop|save|decide|plan" >&2; exit 2 ;;
esac
