#!/usr/bin/env bash
# The evidence runs of README "Gradient statistics, A_log and the fair reference", on the
# device machine from a folder /work/main/.device/NAME/ (bundle and run.sh of
# scripts/device_bundle.sh, data/, configs/, dense/), this script copied there as gp_run.sh:
#   bash .device/NAME/gp_run.sh dense|jobs JOBS_FILE SECONDS
# dense: trains the two dense models (8 threads each), exports them to $OUT in pieces,
# then runs jobs. jobs: runs JOBS_FILE lines "name|corpus|--set k=v ..." 16 at a time,
# 1 thread each, until SECONDS have passed; results tarred to $OUT/results.tar.gz.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
start=$(date +%s)
export GP_DEADLINE=$((start + $3))
bash "$here/run.sh" mambaprune --help >/dev/null 2>&1 || true   # unpacks the bundle once
root=/tmp/mp/$(basename "$here")   # where run.sh unpacked the bundle
export GP_BIN=$root/bin/mambaprune LD_LIBRARY_PATH=$root/lib GP_HERE="$here" GP_W=/tmp/gp
mkdir -p $GP_W/res $GP_W/runs
nproc; lscpu | grep -E "Model name|^CPU\(s\)" 
DENSE_SET="--set train.steps=500 --set optim.warmup_steps=50 --set train.eval_every=0 --set eval.batches=24 --set checkpoint.every=0 --set checkpoint.keep=1 --set log.progress=false"
if [ "$1" = dense ]; then
  for c in tiny ptb; do
    ( OMP_NUM_THREADS=8 OPENBLAS_NUM_THREADS=1 $GP_BIN train --config $here/configs/dense_text.yaml \
        --set data.path=$here/data/$c.txt $DENSE_SET --set train.threads=8 --set log.dir=$GP_W/runs \
        --set log.name=dense_$c > $GP_W/res/dense_$c.log 2>&1
      $GP_BIN export --model $GP_W/runs/dense_$c/ckpt-00000500.h5 --to $GP_W/dense_$c >> $GP_W/res/dense_$c.log 2>&1
      cp $GP_W/runs/dense_$c/metrics.jsonl $GP_W/res/dense_$c.metrics.jsonl
      tar -C $GP_W -cf - dense_$c | split -b 15M - $OUT/dense_$c.tar.part- ) &
  done
  wait
  echo "dense done after $(( $(date +%s) - start )) s"
else
  for c in tiny ptb; do
    if [ ! -d $GP_W/dense_$c ]; then cat $here/dense/dense_$c.tar.part-* | tar -C $GP_W -xf -; fi
  done
fi
job() {
  IFS='|' read -r name corpus settings <<< "$1"
  now=$(date +%s); left=$((GP_DEADLINE - now - 20))
  if [ $left -lt 60 ]; then echo "skip $name"; return; fi
  t0=$(date +%s)
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 timeout $left $GP_BIN train --config $GP_HERE/configs/prune_cubic_text.yaml \
    --set data.path=$GP_HERE/data/$corpus.txt --set model.init=$GP_W/dense_$corpus $settings \
    --set train.threads=1 --set log.dir=$GP_W/runs --set log.name=$name > $GP_W/res/$name.log 2>&1
  rc=$?
  echo "$name rc=$rc $(( $(date +%s) - t0 )) s"
  if [ $rc -eq 0 ]; then
    tail -n 1 $GP_W/runs/$name/metrics.jsonl > $GP_W/res/$name.summary.json
    [ -f $GP_W/runs/$name/report.json ] && cp $GP_W/runs/$name/report.json $GP_W/res/$name.report.json
    echo "$(( $(date +%s) - t0 ))" > $GP_W/res/$name.seconds
  fi
}
export -f job
grep -v '^#' "$2" | xargs -d '\n' -P ${4:-16} -I{} bash -c 'job "$@"' _ {}
tar -C $GP_W -czf $OUT/results.tar.gz res
echo "all done after $(( $(date +%s) - start )) s"
