#!/usr/bin/env bash
# shellcheck disable=SC2015  # ok and fail (tests/common.bash) always return 0, so "A && ok || fail" is if-then-else here
# World-size invariance (issue 3): N ranks x B per rank train what 1 rank x N*B
# trains, because the sampler gives rank r the global positions r, r+N, ...,
# every per-example random stream is keyed by the global position, gradients
# are averaged over ranks, and synchronized batch norm makes BN statistics
# global. Each run trains 20 steps (dropout on) and dumps its parameters; we
# compare the relative L2 difference ||p_N - p_1|| / ||p_1|| of every
# network's parameters and BN state.
#   1. vae (no BN): 2 and 3 ranks with sync_bn, 2 ranks without: <= 1e-5;
#   2. dcgan (BN in G, dropout in D) with sync_bn: 2 and 3 ranks: <= 1e-5;
#   3. teeth: the dcgan on 2 ranks WITHOUT sync_bn is far off (> 1e-4);
#   4. the shipped Adam settings, reported next to a control;
#   5. dcgan with the stabilizers that keep the invariance (instance noise,
#      spectral norm, label smoothing, the EMA generator), SGD: <= 1e-5.
# The comparison has teeth too (0): a NaN or Inf in a dump, or a difference
# that is not finite, is a failure (tests/mpi_params.py exits 1 naming the
# network and the part), never a number that passes a bound; its selftest on
# hand-made dumps and a NaN written into a real dump check that.
# The strict checks 1-2 train with plain SGD. With Adam, any rounding-level
# difference (another summation order: more ranks, another BLAS kernel) is
# amplified to ~1e-3 within 20 steps: Adam turns a tiny gradient change at a
# ReLU/LeakyReLU kink or a near-cancelling component into a change of order lr
# (the update is normalized), and the GAN/BN dynamics grow it. The control
# shows this without MPI: two 1-rank runs that differ only by one ulp in every
# parameter after step 1 (debug.perturb_*) end up that far apart as well. So
# the Adam comparison (4) only asserts a sanity bound and prints both numbers.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
cmp_py="$src/tests/mpi_params.py"
export OMPI_MCA_rmaps_base_oversubscribe=1

common=(train.steps=20 train.epochs=0 data.limit=1200 eval.at_end=false log.every=0 dist.check_every=10 checkpoint.every=0 samples.every=0)
# run NAME RANKS BATCH CONFIG [overrides...]: dumps to $tmp/NAME.rank0
run() {
  local name=$1 np=$2 b=$3 cfg=$4; shift 4
  if ! timeout -k 5 300 mpirun -np "$np" "$bin" train "$src/configs/$cfg.ini" run.dir="$tmp/$name" \
      train.batch_size="$b" "${common[@]}" debug.dump_params="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1; then
    fail "$name: the run failed: $(tail -5 "$tmp/$name.log")"
    return 1
  fi
}
# diff_of A B: sets d to the largest relative difference between the dumps of
# runs A and B (the per-network lines go to stderr). A dump that
# tests/mpi_params.py rejects (NaN/Inf in a dump or in a difference, or dumps
# that do not match) is a failure: fail with its message, return 1.
diff_of() {
  if "$py" "$cmp_py" diff "$tmp/$1.rank0" "$tmp/$2.rank0" > "$tmp/diff.txt" 2> "$tmp/diff.err"; then
    cat "$tmp/diff.txt" >&2
    d=$(tail -n 1 "$tmp/diff.txt")
  else
    fail "$1 vs $2: the parameters cannot be compared: $(cat "$tmp/diff.err" "$tmp/diff.txt")"
    return 1
  fi
}
# le X Y, gt X Y: X <= Y, X > Y; both false when X is NaN
le() { "$py" -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }
gt() { "$py" -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$1" "$2"; }

# 0. the comparison: hand-made dumps with NaN/Inf must fail, naming network and part
if "$py" "$cmp_py" selftest > "$tmp/selftest.log" 2>&1; then
  ok "mpi_params.py selftest: $(grep -c '^ok' "$tmp/selftest.log") checks (NaN/Inf in either dump or in a difference is an error naming the network and part)"
else fail "mpi_params.py selftest: $(grep -v '^ok' "$tmp/selftest.log")"; fi

# 1. vae, SGD
vsgd=(optim.kind=sgd optim.lr=1e-4 optim.beta1=0)
run vae1 1 12 vae dist.sync_bn=true "${vsgd[@]}"
for np in 2 3; do
  run "vae$np" "$np" $((12 / np)) vae dist.sync_bn=true "${vsgd[@]}" || continue
  diff_of vae1 "vae$np" || continue
  if le "$d" 1e-5; then ok "vae: $np ranks x $((12 / np)) = 1 rank x 12 with sync_bn (rel. diff $d)"
  else fail "vae: $np ranks x $((12 / np)) vs 1 x 12 with sync_bn: rel. diff $d > 1e-5"; fi
done
if run vae2l 2 6 vae dist.sync_bn=false "${vsgd[@]}" && diff_of vae1 vae2l; then
  if le "$d" 1e-5; then ok "vae: 2 ranks x 6 = 1 rank x 12 without sync_bn, no BN in the model (rel. diff $d)"
  else fail "vae: 2 ranks x 6 vs 1 x 12 without sync_bn: rel. diff $d > 1e-5"; fi
fi

# 2. dcgan with sync BN, SGD
sgd=(optim.kind=sgd optim.lr=2e-3 optim.beta1=0)
run gan1 1 12 dcgan dist.sync_bn=true "${sgd[@]}"
for np in 2 3; do
  run "gan$np" "$np" $((12 / np)) dcgan dist.sync_bn=true "${sgd[@]}" || continue
  diff_of gan1 "gan$np" || continue
  if le "$d" 1e-5; then ok "dcgan: $np ranks x $((12 / np)) = 1 rank x 12 with sync_bn, dropout on (rel. diff $d)"
  else fail "dcgan: $np ranks x $((12 / np)) vs 1 x 12 with sync_bn: rel. diff $d > 1e-5"; fi
done

# 3. without sync BN the dcgan cannot match (local batch statistics)
if run gan2l 2 6 dcgan dist.sync_bn=false "${sgd[@]}" && diff_of gan1 gan2l; then
  if gt "$d" 1e-4; then ok "dcgan: without sync_bn, 2 ranks x 6 differ from 1 x 12 as they should (rel. diff $d)"
  else fail "dcgan: 2 ranks without sync_bn match 1 rank (rel. diff $d): the test has no teeth"; fi
fi
# ... and a NaN is not "far off": gan1's dump with one parameter set to NaN
# must make diff_of fail (in a subshell, so that this expected FAIL is not
# counted), naming the network and the part
"$py" - "$tmp/gan1.rank0" "$tmp/gan1nan.rank0" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n_params = struct.unpack_from("<Q", b, 32)[0]      # the first network's params start at byte 48
struct.pack_into("<f", b, 48 + 4 * (n_params // 2), float("nan"))
open(sys.argv[2], "wb").write(b)
PY
if out=$(diff_of gan1 gan1nan 2>&1); then
  fail "a NaN parameter in a dump went through the comparison: $out"
elif grep -qE "^FAIL: gan1 vs gan1nan: .*gan1nan.rank0: network [a-z]+ params: 1 of [0-9]+ values are not finite" <<<"$out"; then
  ok "a NaN parameter in a dump fails the comparison: $(grep -o 'network [a-z]* params: .*' <<<"$out" | head -n 1)"
else fail "a NaN parameter in a dump: unexpected message: $out"; fi

# 5. the stabilizers that keep the invariance: instance noise (drawn per
#    global example), spectral norm in D and G (u and v do not depend on the
#    batch), label smoothing and the EMA generator (compared too: the dump's
#    ema_generator record); SGD, sync BN
stab="model.instance_noise=0.2 model.label_smoothing=0.1 model.g_ema=0.9
      discriminator.layer4=conv2d#out=128#kernel=4#stride=2#pad=1#sn=true
      generator.layer5=convt2d#out=128#kernel=4#stride=2#pad=1#bias=false#sn=true"
run_stab() {  # NAME RANKS BATCH: the layer lines' spaces are '#' above
  local args=() a
  for a in $stab; do args+=("${a//#/ }"); done
  run "$1" "$2" "$3" dcgan dist.sync_bn=true "${sgd[@]}" "${args[@]}"
}
if run_stab stab1 1 12 && run_stab stab2 2 6 && diff_of stab1 stab2; then
  grep -q "ema_generator params" "$tmp/diff.txt" || fail "stabilizers: the dump has no EMA generator"
  le "$d" 1e-5 && ok "dcgan with instance noise, spectral norm, label smoothing, EMA: 2 ranks x 6 = 1 rank x 12 with sync_bn (rel. diff $d)" \
               || fail "dcgan with the stabilizers: 2 ranks x 6 vs 1 x 12: rel. diff $d > 1e-5"
fi

# 4. the shipped Adam settings: 2 ranks vs 1, next to the 1-ulp control
for m in dcgan vae; do
  run "${m}A1" 1 12 "$m" dist.sync_bn=true &&
  run "${m}A1p" 1 12 "$m" dist.sync_bn=true debug.perturb_rank=0 debug.perturb_step=1 &&
  run "${m}A2" 2 6 "$m" dist.sync_bn=true &&
  diff_of "${m}A1" "${m}A1p" && c=$d &&
  diff_of "${m}A1" "${m}A2" && {
    lim=$("$py" -c "import sys; print(max(0.05, 5 * float(sys.argv[1])))" "$c")
    if le "$d" "$lim"; then ok "$m (Adam): 2 ranks x 6 vs 1 x 12: rel. diff $d; 1-rank control with 1-ulp noise: $c"
    else fail "$m (Adam): 2 ranks x 6 vs 1 x 12: rel. diff $d (control $c; limit $lim)"; fi
  }
done

finish mpi_invariance
