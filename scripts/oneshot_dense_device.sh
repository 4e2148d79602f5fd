#!/usr/bin/env bash
# The dense models of README "One-shot methods side by side", on the 16-core device machine:
# trains configs/dense_text.yaml on both corpora side by side (8 threads each), stops each
# once its step-500 checkpoint is written, exports it, and puts the exported folders (tar,
# in < 15 MiB pieces) and the training logs under $OUT. Run from a carried folder holding
# this script, bundle.tar.xz of scripts/device_bundle.sh, dense_text.yaml and
# data/{tinyshakespeare,ptb}.txt:  bash .device/NAME/oneshot_dense_device.sh
# Back here: cat <corpus>-hf.tar.part-* | tar -C runs/dense -xf -
set -u
here="$(cd "$(dirname "$0")" && pwd)"
start=$(date +%s)
mkdir -p /tmp/mp/b && tar -C /tmp/mp/b -xJf "$here/bundle.tar.xz"
B=/tmp/mp/b/bin/mambaprune; export LD_LIBRARY_PATH=/tmp/mp/b/lib
W=/tmp/bw; mkdir -p $W/runs $W/res
nproc; lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-300
for c in tinyshakespeare ptb; do
  ( exec $B train --config $here/dense_text.yaml --set data.path=$here/data/$c.txt --set train.threads=8 \
        --set log.dir=$W/runs --set log.name=dense_$c > $W/res/dense_$c.log 2>&1 ) &
  echo $! > $W/pid_$c
done
for c in tinyshakespeare ptb; do
  ( while [ ! -f $W/runs/dense_$c/ckpt-00000500.h5 ]; do sleep 0.5; done; sleep 2
    kill $(cat $W/pid_$c) 2>/dev/null
    echo "$c: ckpt 500 after $(( $(date +%s) - start )) s"
    $B export --model $W/runs/dense_$c/ckpt-00000500.h5 --to $W/$c-hf >> $W/res/dense_$c.log 2>&1
    cp $W/runs/dense_$c/metrics.jsonl $W/res/dense_$c.metrics.jsonl
    tar -C $W -cf - $c-hf | split -b 15M - $OUT/$c-hf.tar.part- ) &
done
wait
tar -C $W -czf $OUT/res.tar.gz res
echo "done after $(( $(date +%s) - start )) s"; ls -la $OUT
