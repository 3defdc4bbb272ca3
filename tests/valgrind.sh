#!/usr/bin/env bash
# The release program under valgrind's memcheck (one process, no mpirun):
# every command must run with no invalid read or write, no use of
# uninitialised values and no leak (--leak-check=full; definite and possible
# leaks are errors). Open MPI's own leaks under MPI_Init and MPI_Finalize are
# suppressed (tests/valgrind-openmpi.supp says why); nothing else is.
#  1. mlpvae on Fashion-MNIST (256 images, batch 16): 3 steps with
#     checkpoints, samples and metrics, then a resume to step 5;
#  2. toygan (the 2-D ring, batch 16): 2 steps, checkpoint, samples;
#  3. gentrain sample on both checkpoints, gentrain inspect on a checkpoint,
#     samples.h5 and metrics.h5.
# Without valgrind it fails with the package to install.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1
if ! command -v valgrind > /dev/null; then
  fail "valgrind missing: apt-get install -y valgrind (tools/setup.sh installs it)"
  finish valgrind
fi
V=(valgrind --error-exitcode=99 --leak-check=full --num-callers=50 --suppressions="$src/tests/valgrind-openmpi.supp")
n=0
# vg NAME COMMAND...: the command under valgrind exits 0 with no error
vg() {
  local name=$1 rc=0 start=$SECONDS; shift
  n=$((n + 1))
  "${V[@]}" --log-file="$tmp/vg-$n.txt" "$@" > "$tmp/out-$n.txt" 2>&1 || rc=$?
  local summary
  summary=$(grep -h 'ERROR SUMMARY' "$tmp/vg-$n.txt" | tail -n 1 | sed 's/^==[0-9]*== //')
  if [ "$rc" = 0 ] && grep -q 'ERROR SUMMARY: 0 errors' "$tmp/vg-$n.txt"; then
    ok "$name: $summary ($((SECONDS - start)) s)"
  else
    local why="valgrind found errors"
    [ "$rc" = 99 ] || why=$(tail -n 3 "$tmp/out-$n.txt")
    fail "$name: exit $rc ($why): $summary"
    grep -v '^==[0-9]*== *$' "$tmp/vg-$n.txt" | sed -n '/Invalid\|uninitialised\|lost in loss record\|Syscall\|Mismatched/,+14p' | head -60
  fi
}
M=("$src/configs/mlpvae.ini" train.epochs=0 train.batch_size=16 data.limit=256 log.every=1 eval.n=16
   checkpoint.every=2 samples.every=2 samples.n=8 run.dir="$tmp/vae")
vg "mlpvae: train 3 steps" "$bin" train "${M[@]}" train.steps=3
vg "mlpvae: resume to step 5" "$bin" train "${M[@]}" train.steps=5
if grep -q "resuming from $tmp/vae/checkpoints/step-00000003.h5" "$tmp/out-2.txt"; then ok "mlpvae: it resumed from step 3"
else fail "mlpvae: no resume from step 3: $(head -c 600 "$tmp/out-2.txt")"; fi
G=("$src/configs/toygan.ini" data.n=256 data.n_test=64 train.batch_size=16 log.every=1 checkpoint.every=2
   samples.every=2 samples.n=64 run.dir="$tmp/gan")
vg "toygan: train 2 steps" "$bin" train "${G[@]}" train.steps=2
vg "sample: mlpvae checkpoint" "$bin" sample "$tmp/vae/checkpoints/step-00000005.h5" --n 16 --out "$tmp/vae.png"
vg "sample: toygan checkpoint" "$bin" sample "$tmp/gan/checkpoints/step-00000002.h5" --out "$tmp/gan.png"
vg "inspect: a checkpoint" "$bin" inspect "$tmp/vae/checkpoints/step-00000005.h5"
vg "inspect: samples.h5" "$bin" inspect "$tmp/vae/samples.h5"
vg "inspect: metrics.h5" "$bin" inspect "$tmp/vae/metrics.h5"
finish valgrind
