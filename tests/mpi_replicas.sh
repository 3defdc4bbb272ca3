#!/usr/bin/env bash
# Replica consistency (issue 3), with real mpirun on 2 ranks:
#  1. after 100 steps of dcgan (local BN: rank 0's running statistics are
#     broadcast) and of vae, both ranks hold bitwise identical parameters and
#     BN state, with the overlapped bucketed reduction and with the one-call
#     one; and the two modes give bitwise identical parameters. The overlapped
#     runs use small buckets so that there really are several per step.
#     Also dcgan with sync_bn (BN allreduces interleaved with buckets in flight).
#     The overlapped GAN runs compute the next step's D(x) while G's gradients
#     travel (the log counts those steps; not with batch norm in D: dcgan-paper),
#     also with instance noise (drawn for the next step), through two
#     divergence rollbacks (a NaN injected into a batch that was computed
#     ahead), and across a resume: all bitwise equal to the one-call runs.
#     The start of each overlapped GAN run says whether D(x) is computed
#     ahead, and why not (D's state; data.readahead = 0: no next batch).
#     dist.compress = bf16: both modes bitwise equal too; one SGD step with
#     bfloat16 sums is within 1% of the float sums' (and not equal to it).
#  2. the replica check: rank 1 moves its parameters by one ulp after step 3;
#     with check_every = 5 the run stops after step 5 with a message naming
#     rank 1, the network and the step, and a non-zero exit.
#  3. collective arguments must agree: ranks started with different settings
#     (mpirun MPMD) stop at start with a message naming the rank and the line.
# Bitwise-equal replicas could still be equally NaN: every dump must also be
# finite (tests/mpi_params.py check).
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
cmp_py="$src/tests/mpi_params.py"
export OMPI_MCA_rmaps_base_oversubscribe=1

common=(train.epochs=0 data.limit=2000 eval.at_end=false log.every=25 dist.check_every=10 checkpoint.every=0 samples.every=0)
run() {  # NAME CONFIG overrides...
  local name=$1 cfg=$2; shift 2
  if ! timeout -k 5 300 mpirun -np 2 "$bin" train "$src/configs/$cfg.ini" run.dir="$tmp/$name" "${common[@]}" \
      debug.dump_params="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1; then
    fail "$name: the run failed: $(tail -5 "$tmp/$name.log")"
    return 1
  fi
}
calls() { sed -n 's/.*dist: \([0-9]*\) gradient allreduce calls.*/\1/p' "$tmp/$1.log"; }

# 1. bitwise identical replicas; overlapped == one call
check_pair() {  # NAME MODEL STEPS overrides...
  local m=$1 cfg=$2 steps=$3; shift 3
  run "$m-ov" "$cfg" train.steps="$steps" dist.overlap=true dist.bucket_mb=0.05 "$@" || return 0
  run "$m-one" "$cfg" train.steps="$steps" dist.overlap=false "$@" || return 0
  if "$py" "$cmp_py" check "$tmp/$m-ov.rank0" "$tmp/$m-ov.rank1" "$tmp/$m-one.rank0" "$tmp/$m-one.rank1" \
      > /dev/null 2> "$tmp/check.err"; then
    ok "$m $*: every parameter and BN statistic of both ranks finite ($steps steps, both modes)"
  else fail "$m $*: $(cat "$tmp/check.err")"; fi
  for mode in ov one; do
    if cmp -s "$tmp/$m-$mode.rank0" "$tmp/$m-$mode.rank1"; then
      ok "$m $*: replicas bitwise identical after $steps steps ($mode)"
    else fail "$m $*: ranks 0 and 1 hold different parameters after $steps steps ($mode)"; fi
  done
  if cmp -s "$tmp/$m-ov.rank0" "$tmp/$m-one.rank0"; then
    ok "$m $*: overlapped buckets ($(calls "$m-ov") calls) and one call ($(calls "$m-one") calls) give identical parameters"
  else fail "$m $*: overlapped and one-call reductions give different parameters"; fi
  if [ "$(calls "$m-ov")" -gt "$(calls "$m-one")" ]; then ok "$m: the overlapped run used several buckets per step"
  else fail "$m: the overlapped run used $(calls "$m-ov") calls, the one-call run $(calls "$m-one")"; fi
  if grep -q '"comm_wait_frac"' "$tmp/$m-ov/metrics.jsonl"; then ok "$m: comm_wait_frac in metrics.jsonl"
  else fail "$m: no comm_wait_frac in metrics.jsonl"; fi
}
ahead() { sed -n "s/.*; \([0-9]*\) steps computed the next step's D(x) while G's gradients travelled.*/\1/p" "$tmp/$1.log"; }
expect_ahead() {  # NAME N [SAYS]: the run computed D(x) ahead in N steps (0: never, and the end line says nothing),
  # and its start says SAYS about it (none: no such line, as for a VAE)
  local got says=${3:-} start; got=$(ahead "$1")
  start=$(sed -n "s/^dist: the next step's D(x) \(.*\)/\1/p" "$tmp/$1.log")
  if [ "${got:-0}" = "$2" ]; then ok "$1: D(x) computed ahead in ${got:-0} steps"
  else fail "$1: D(x) computed ahead in '${got:-0}' steps, expected $2"; fi
  if [ "$2" != 0 ] && grep -q "D(x) while" "$tmp/${1%-ov}-one.log"; then fail "$1: the one-call run computed ahead"; fi
  if { [ -z "$says" ] && [ -z "$start" ]; } || { [ -n "$says" ] && [[ $start == *"$says"* ]]; }; then
    if [ -n "$start" ]; then ok "$1: its start says: the next step's D(x) $start"
    else ok "$1: its start says nothing about D(x) ahead"; fi
  else fail "$1: its start says '${start:-nothing}' about D(x) ahead, expected '${says:-nothing}'"; fi
}
check_pair dcgan dcgan 100 train.batch_size=4
expect_ahead dcgan-ov 99 "is computed while G's gradients travel"
check_pair vae vae 100 train.batch_size=16
expect_ahead vae-ov 0
# without a reader thread there is no next batch at hand: the start says why nothing is computed ahead
run dcgan-ra0-ov dcgan train.steps=10 train.batch_size=4 dist.overlap=true data.readahead=0 &&
  expect_ahead dcgan-ra0-ov 0 "is not computed while G's gradients travel: data.readahead = 0"
check_pair dcgan-syncbn dcgan 30 train.batch_size=4 dist.sync_bn=true
check_pair dcgan-noise dcgan 40 train.batch_size=4 model.instance_noise=0.1 model.instance_noise_steps=40
expect_ahead dcgan-noise-ov 39 "is computed while"
check_pair dcgan-paper dcgan-paper 20 train.batch_size=4
expect_ahead dcgan-paper-ov 0 "is not computed while G's gradients travel: D keeps state"
# compression: both modes bitwise equal at 2 ranks (one bfloat16 sum per element); one SGD step with lr 10
# (the largest allowed: the parameters are then mostly -lr x the gradient) lands within 1% of the float sums' step, but not on it
check_pair dcgan-bf16 dcgan 40 train.batch_size=4 dist.compress=bf16
expect_ahead dcgan-bf16-ov 39 "is computed while"
sgd=(mlpvae train.steps=1 train.batch_size=16 optim.kind=sgd optim.lr=10)
if run sgd-f32 "${sgd[@]}" && run sgd-bf16 "${sgd[@]}" dist.compress=bf16; then
  d=$("$py" "$cmp_py" diff "$tmp/sgd-f32.rank0" "$tmp/sgd-bf16.rank0" | tail -n 1)
  if grep -q "as bfloat16" "$tmp/sgd-bf16.log" && "$py" -c 'import sys; d = float(sys.argv[1]); sys.exit(not 1e-5 < d < 1e-2)' "$d"
  then ok "bf16 sums: one SGD step differs from the float sums' by $d (relative L2; bfloat16 keeps 8 significant bits)"
  else fail "bf16 sums: one SGD step differs from the float sums' by '$d' (want 1e-5 .. 1e-2), or the log does not say bfloat16"; fi
fi
# rollbacks: rank 1's batch of step 15 gets a NaN twice; each time the run goes back to step 10
check_pair dcgan-rollback dcgan 30 train.batch_size=4 checkpoint.every=10 train.on_divergence=rollback \
    debug.nan_rank=1 debug.nan_step=15 debug.nan_times=2
if [ "$(grep -c '^rollback [0-9] of' "$tmp/dcgan-rollback-ov.log")" = 2 ]; then ok "dcgan-rollback: 2 rollbacks"
else fail "dcgan-rollback: expected 2 rollbacks: $(grep -i rollback "$tmp/dcgan-rollback-ov.log" | tail -3)"; fi
# resume: 15 + 15 overlapped steps == 30 one-call steps (the resumed run has nothing computed ahead at first)
resume=(dcgan train.batch_size=4 checkpoint.every=15)
if run resume-a "${resume[@]}" train.steps=15 dist.overlap=true && run resume-a "${resume[@]}" train.steps=30 dist.overlap=true &&
    run resume-b "${resume[@]}" train.steps=30 dist.overlap=false; then
  if grep -q "resuming from .*step-00000015.h5" "$tmp/resume-a.log" && cmp -s "$tmp/resume-a.rank0" "$tmp/resume-b.rank0"; then
    ok "dcgan: 15 + 15 overlapped steps (resumed) give the parameters of 30 one-call steps"
  else fail "dcgan: the resumed overlapped run differs from the one-call run (or did not resume)"; fi
fi

# 2. the replica check catches a divergence
if timeout -k 5 120 mpirun -np 2 "$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/perturb" "${common[@]}" \
    train.steps=20 train.batch_size=16 dist.check_every=5 debug.perturb_rank=1 debug.perturb_step=3 \
    > "$tmp/perturb.log" 2>&1; then
  fail "a diverged replica went unnoticed (exit 0)"
elif grep -q "replicas diverged after step 5: network encoder: rank(s) 1 hold" "$tmp/perturb.log"; then
  ok "diverged replica: $(grep -m1 'replicas diverged' "$tmp/perturb.log" | cut -c1-150)"
else fail "diverged replica: unexpected output: $(grep -v '^ ' "$tmp/perturb.log" | tail -5)"; fi
if grep -q "step     20/20" "$tmp/perturb.log"; then fail "the run went on after the mismatch"; fi

# 3. ranks that disagree on the configuration stop at start
if timeout -k 5 120 mpirun -np 1 "$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/mpmd" "${common[@]}" train.steps=5 \
    train.batch_size=16 : -np 1 "$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/mpmd" "${common[@]}" train.steps=5 \
    train.batch_size=17 > "$tmp/mpmd.log" 2>&1; then
  fail "ranks with different batch sizes ran (exit 0)"
elif grep -q "rank 0\]: error: ranks disagree on the resolved configuration (rank(s) 1 differ from rank 0)" "$tmp/mpmd.log" &&
     grep -q "rank 1\]: warning: my resolved config differs from rank 0's at line [0-9]*: mine 'batch_size = 17', rank 0's 'batch_size = 16'" "$tmp/mpmd.log"; then
  ok "disagreeing ranks stop at start, naming rank 1 and the line"
else fail "disagreeing ranks: unexpected output: $(tail -5 "$tmp/mpmd.log")"; fi

finish mpi_replicas
