#!/usr/bin/env bash
# GPU smoke (issue 13): configs/pretrain.yaml and configs/finetune/nae_prw_r50.yaml for a few dozen
# iterations each on one GPU, with the configs' input sizes, AMP and synthetic data; prints
# s/iteration, data_time, peak GPU memory and whether every loss stayed finite, then the
# sharded-vs-replicated OIM check on NCCL when 2+ GPUs exist. One command for a lent machine:
#
#     bash bench/gpu_smoke.sh           # from the repository root; .whl/ from gpu_smoke_prepare.sh
#     bash bench/gpu_smoke.sh --cpu     # dry run on the CPU (or SMOKE_DEVICE=cpu): AMP off,
#                                       # 3 iterations, 160 px inputs
#
# Environment: SMOKE_ITERS (40; CPU 3), SMOKE_WORK (/tmp/gpu_smoke: world, run folders),
# SMOKE_STEP_TIMEOUT (300 s per training run), PYTHON (python3). Logs go to $OUT when it is set
# (the device tool's folder that comes back), else to SMOKE_WORK. Exit status 1 when a run failed,
# a loss was not finite or the OIM check failed.
set -euo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

DEVICE=${SMOKE_DEVICE:-cuda}
[ "${1:-}" = "--cpu" ] && DEVICE=cpu
WORK=${SMOKE_WORK:-/tmp/gpu_smoke}
LOGS=${OUT:-$WORK}
SITE=/tmp/site
STEP_TIMEOUT=${SMOKE_STEP_TIMEOUT:-300}
PY=${PYTHON:-python3}
"$PY" -c "import torch" 2>/dev/null || PY=python

if [ "$DEVICE" = cuda ]; then
  ITERS=${SMOKE_ITERS:-40}
  # Random init (no ImageNet file there): BN, not the configs' FrozenBN, which would leave a
  # randomly initialised ResNet-50 unnormalised (the CI test of configs/pretrain.yaml does the same).
  # Batch: pre-training's 2 images per GPU of its 8-GPU recipe; fine-tuning's own 5 on one GPU.
  COMMON=(MODEL.DEVICE cuda SOLVER.AMP.ENABLED True)
  PRE_BATCH=2 FT_BATCH=5 WORLD_WORKERS=8
else
  ITERS=${SMOKE_ITERS:-3}
  # Fewer test proposals too: res5 on the configs' 300 test RoIs costs ~9 s per image on the CPU.
  COMMON=(MODEL.DEVICE cpu SOLVER.AMP.ENABLED False INPUT.MIN_SIZE_TRAIN "(160,)"
    INPUT.MAX_SIZE_TRAIN 256 INPUT.MIN_SIZE_TEST 160 INPUT.MAX_SIZE_TEST 256
    MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE 16 DATALOADER.NUM_WORKERS 0
    MODEL.RPN.PRE_NMS_TOPK_TEST 300 MODEL.RPN.POST_NMS_TOPK_TEST 32)
  PRE_BATCH=2 FT_BATCH=2 WORLD_WORKERS=1
fi
# Only model_final is written; EVAL_PERIOD 0 still evaluates once after the last iteration.
COMMON+=(SOLVER.MAX_ITER "$ITERS" SOLVER.CHECKPOINT_PERIOD 1000000 TEST.EVAL_PERIOD 0)
SYNTH_PRE='("synth_crowdhuman_train","synth_ecp_day_train","synth_msmt17_train","synth_cuhk03_labeled_train","synth_luperson_30k")'

install_deps() {
  export PYTHONPATH=$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
  local probe="import detectron2, fvcore, iopath, yacs, termcolor, omegaconf, pycocotools.mask, lmdb"
  if "$PY" -c "$probe" 2>/dev/null; then
    echo "detectron2 and its dependencies import already: .whl/ not installed"
  elif compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
      --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
    echo "installed $(ls .whl/*.whl | wc -l) wheels from .whl/ into $SITE"
  else
    echo "detectron2 or a dependency is missing and there is no .whl/: run bash bench/gpu_smoke_prepare.sh first"
    return 1
  fi
  "$PY" -c "$probe; import hpps_d2, torch, sys
n = torch.cuda.device_count()
print(f'python {sys.version.split()[0]}, torch {torch.__version__}, detectron2 {detectron2.__version__}, '
      f'{n} GPU(s)' + (f': {torch.cuda.get_device_name(0)}' if n else ''))"
}

# summarise NAME RUN_DIR STDOUT RC WALL: one row of $WORK/summary.tsv from metrics.json (time and
# data_time: detectron2 writes their median over the last 20 iterations, the first 3 iterations
# excluded from time) and the console log (max_mem: torch.cuda.max_memory_allocated, which
# detectron2's CommonMetricPrinter prints but does not put into metrics.json). Fails on a missing
# or non-finite loss.
summarise() {
  "$PY" - "$@" "$ITERS" "$WORK/summary.tsv" <<'EOF'
import json, math, os, re, sys
name, run, out, rc, wall, iters, tsv = sys.argv[1:]
path = os.path.join(run, "metrics.json")
rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
rows = [r for r in rows if "total_loss" in r]  # training rows (the evaluation writes one too)
losses = sorted({k for r in rows for k in r if "loss" in k or k.startswith(("det_", "reid_", "ssl_", "adv_"))})
bad = sorted({k for r in rows for k in losses if k in r and not math.isfinite(r[k])})
last = rows[-1] if rows else {}
mem = [int(m) for m in re.findall(r"max_mem: (\d+)M", open(out, errors="replace").read())]
fmt = lambda k: f"{last[k]:.3f}" if k in last else "n/a"
finite = f"no: {', '.join(bad)}" if bad else (f"yes ({len(losses)} terms)" if losses else "no losses logged")
done = last.get("iteration", -1) + 1
ok = rc == "0" and losses and not bad and done == int(iters)
evaluated = os.path.exists(os.path.join(run, "eval_results.json"))
cells = [name, "ok" if ok else "FAIL", f"{done}/{iters}", fmt("time"), fmt("data_time"),
         f"{max(mem)} MiB" if mem else "n/a", finite, "yes" if evaluated else "-", f"{wall} s"]
print("  ".join(cells))
with open(tsv, "a") as f:
    f.write("\t".join(cells) + "\n")
sys.exit(0 if ok else 1)
EOF
}

# train NAME CONFIG OPTS...: tools/train_net.py into $WORK/NAME, its console output into $LOGS.
train() {
  local name=$1 cfg=$2 rc=0 start=$SECONDS
  shift 2
  local run=$WORK/$name out=$LOGS/${name}_stdout.txt
  echo "== $name: $cfg, $ITERS iterations on $DEVICE (console: $out)"
  timeout "$STEP_TIMEOUT" "$PY" tools/train_net.py --config-file "$cfg" "${COMMON[@]}" "$@" \
    OUTPUT_DIR "$run" >"$out" 2>&1 || rc=$?
  if [ "$rc" = 124 ]; then
    echo "-- $name: stopped after $STEP_TIMEOUT s (SMOKE_STEP_TIMEOUT)"
  elif [ "$rc" != 0 ]; then
    echo "-- $name exited with $rc; the end of its output:"
    tail -n 40 "$out"
  fi
  grep -E " iter: [0-9]+ .*(time|lr):" "$out" | tail -n 2 || true
  cp "$run/metrics.json" "$LOGS/${name}_metrics.json" 2>/dev/null || true
  summarise "$name" "$run" "$out" "$rc" "$((SECONDS - start))"
}

main() {
  local failed=0 ngpu
  echo "gpu_smoke: $(date -u +%FT%TZ), device $DEVICE, $(getconf _NPROCESSORS_ONLN) CPU cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  install_deps
  ngpu=$("$PY" -c "import torch; print(torch.cuda.device_count())")
  if [ "$DEVICE" = cuda ] && [ "$ngpu" -lt 1 ]; then echo "no GPU visible: use --cpu for the dry run"; return 1; fi
  rm -rf "$WORK/datasets" "$WORK/pretrain" "$WORK/finetune" "$WORK/whole.pth" "$WORK/summary.tsv"
  mkdir -p "$WORK" "$LOGS"

  # The smallest world (every split at its minimum size) with the five pre-training sources and
  # PRW; the loaders cycle through it. Frames are small, so data_time is a lower bound.
  echo "== synthetic world"
  "$PY" tools/make_synth_data.py --out "$WORK/datasets/synth" --scale 0.01 --workers "$WORLD_WORKERS" \
    --datasets crowdhuman,ecp,msmt17,cuhk03,luperson,prw | tail -n 1
  export HPPS_DATASETS=$WORK/datasets

  train pretrain configs/pretrain.yaml DATASETS.TRAIN "$SYNTH_PRE" MODEL.WEIGHTS "" \
    MODEL.RESNETS.NORM BN SOLVER.IMS_PER_BATCH "$PRE_BATCH" || failed=1

  # Fine-tuning as configs/finetune/nae_prw_r50.yaml reads it: the whole pre-trained model, with
  # the config's FrozenBN holding the BN statistics of the pre-training run; from random init (BN)
  # when the pre-training left no weights.
  local init=(MODEL.WEIGHTS "" MODEL.RESNETS.NORM BN)
  if [ -f "$WORK/pretrain/model_final.pth" ] &&
    "$PY" tools/export_weights.py "$WORK/pretrain/model_final.pth" --whole "$WORK/whole.pth"; then
    init=(MODEL.WEIGHTS "$WORK/whole.pth")
  else
    echo "-- no pre-trained weights: fine-tuning from random init"
  fi
  train finetune configs/finetune/nae_prw_r50.yaml DATASETS.TRAIN '("synth_prw_train",)' \
    DATASETS.TEST '("synth_prw_query",)' "${init[@]}" SOLVER.IMS_PER_BATCH "$FT_BATCH" || failed=1

  echo "== sharded vs replicated OIM"
  local oim check=(--backend nccl) rc=0
  if [ "$DEVICE" = cuda ] && [ "$ngpu" -lt 2 ]; then
    oim=skipped
    echo "skipped: $ngpu GPU visible, the NCCL check needs 2 (tests/modeling/test_oim_sharded.py runs it on gloo)"
  else
    # the dry run exercises the script on 2 CPU processes, at a small size
    [ "$DEVICE" = cuda ] || check=(--backend gloo --ids 20000 --rois 128 --queue 500 --chunk-rows 4096)
    timeout "$STEP_TIMEOUT" "$PY" bench/oim_sharded_nccl_check.py "${check[@]}" || rc=$?
    [ "$rc" != 124 ] || echo "-- stopped after $STEP_TIMEOUT s (SMOKE_STEP_TIMEOUT)"
    if [ "$rc" = 0 ]; then oim="ok (${check[1]})"; else oim=FAIL failed=1; fi
  fi

  echo
  echo "== summary ($DEVICE; time, data_time: s, median of the last <= 20 iterations; mem: peak allocated)"
  "$PY" - "$WORK/summary.tsv" <<'EOF'
import sys
from tabulate import tabulate
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print(tabulate(rows, headers=["run", "status", "iters", "s/iter", "data_time", "peak GPU mem",
                              "losses finite", "eval", "wall"], tablefmt="github"))
EOF
  echo "OIM sharded vs replicated: $oim"
  echo "gpu_smoke: $([ "$failed" = 0 ] && echo ok || echo FAILED)"
  return "$failed"
}

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  main 2>&1 | tee "$OUT/gpu_smoke.log"
else
  main
fi
