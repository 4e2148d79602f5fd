#!/usr/bin/env python3
"""Runs a benchmark with extra environment variables and prints its tokens/s beside the
child's resource usage (voluntary and involuntary context switches, user and system CPU
seconds), e.g. to see whether OpenMP's threads sleep between parallel regions:

    python3 bench/rusage_run.py OMP_WAIT_POLICY=active,GOMP_SPINCOUNT=3000000 \\
        ./build/bench_train --d-model 768 --n-layer 24 --vocab 50280 --no-profile

ENV is a comma-separated list of NAME=VALUE ("" for none); the command must print a
bench_train line ("... N tokens/s ... median step M ms ...")."""
import os
import resource
import subprocess
import sys

if len(sys.argv) < 3:
    sys.exit(__doc__)
env = dict(os.environ)
for item in sys.argv[1].split(","):
    if item:
        name, value = item.split("=", 1)
        env[name] = value
out = subprocess.run(sys.argv[2:], env=env, capture_output=True, text=True).stdout
lines = [line for line in out.splitlines() if "tokens/s" in line]
if not lines:
    sys.exit("rusage_run.py: the command printed no tokens/s line:\n" + out)
line = lines[0]
tokens = line.split("tokens/s")[0].split(",")[-1].strip()
median = line.split("median step ")[1].split(" ms")[0]
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{sys.argv[1] or 'default':40s} {tokens:>6s} tok/s  median {median} ms  voluntary switches "
      f"{usage.ru_nvcsw}  involuntary {usage.ru_nivcsw}  user {usage.ru_utime:.1f} s sys {usage.ru_stime:.1f} s",
      flush=True)
