#!/usr/bin/env bash
# tools/costmodel (README "The cost model") against closed forms:
#  1. the gradient sizes it reads from a config are the parameter counts
#     gentrain's own log prints (dcgan, vae);
#  2. one call per network (dist.overlap=false): the step is the compute time
#     plus, per network, one ring allreduce 2(N-1) alpha + 2(N-1)/N S / beta
#     (S its gradient's bytes), at 2, 4 and 64 nodes;
#  3. buckets larger than any network's gradient give exactly that too; on 1
#     node nothing is waited for; at 100 Gbit/s with 1 MB buckets, buckets
#     with perfect progress wait less than one call, buckets that move only
#     inside MPI calls not less (their extra messages' latency), and no wait
#     is negative;
#     A GAN whose D keeps no state (dcgan) computes D(x) ahead and waits less
#     with perfect progress than with --no-ahead; dcgan-paper (BN in D) not;
#  4. an HDF5 config (dcgan64) with --shape 3x64x64 has the sizes test_config
#     counts by hand, and without --shape exits non-zero naming the option;
#  5. --table prints 6 node counts x 3 bandwidths; bad input (missing config,
#     --compute-ms 0) exits non-zero naming the file or the option.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
"$py" -c 'import torch' 2>/dev/null || { echo "FAIL: torch missing for $py: apt-get install -y python3-torch"; exit 1; }
cm=$src/tools/costmodel

for m in dcgan vae; do
  "$bin" train "$src/configs/$m.ini" run.dir="$tmp/$m" train.steps=1 train.epochs=0 log.every=1 eval.at_end=false \
      checkpoint.every=0 samples.every=0 > "$tmp/$m.log" 2>&1 || { fail "$m: 1-step run failed"; sed -n 1,20p "$tmp/$m.log"; continue; }
  params=$(sed -n 's/^network \([a-z]*\): .* \([0-9]*\) parameters$/\1 \2/p' "$tmp/$m.log" | tr '\n' ' ')
  for n in 2 4 64; do
    "$cm" "$src/configs/$m.ini" --compute-ms 100 --nodes "$n" --alpha-us 40 --gbit 1 --json > "$tmp/p0.json"
    "$cm" "$src/configs/$m.ini" --compute-ms 100 --nodes "$n" --alpha-us 40 --gbit 1 --bucket-mb 1000 --json > "$tmp/p1.json"
    if msg=$("$py" - "$n" "$tmp/p0.json" "$tmp/p1.json" "$params" <<'PY' 2>&1
import json, sys
n = int(sys.argv[1])
p0, p1 = (json.load(open(f)) for f in sys.argv[2:4])
words = sys.argv[4].split()
sizes = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
total = 4 * sum(sizes.values())
assert p0["gradient_bytes"] == total, f"gradient bytes {p0['gradient_bytes']} != 4 x the log's parameters {total}"
alpha, beta = 40e-6, 1e9 / 8
ring = sum(2 * (n - 1) * alpha + 2 * (n - 1) / n * 4 * s / beta for s in sizes.values()) * 1e3
want = 100 + ring
for name, p in (("one call", p0["one_call"]), ("buckets of 1000 MB", p1["overlap"])):
    assert abs(p["step_ms"] - want) < 1e-2, f"{name}: step {p['step_ms']} ms, closed form {want:.3f}"
    assert abs(p["wait_ms"] - ring) < 1e-2, f"{name}: wait {p['wait_ms']} ms, closed form {ring:.3f}"
    assert abs(p["efficiency"] - 100 / want) < 1e-3, f"{name}: efficiency {p['efficiency']}"
print(f"step {want:.2f} ms, wait {ring:.2f} ms ({len(sizes)} networks, {total} bytes)")
PY
    ); then ok "$m at $n nodes: one call and one huge bucket = the closed form: $msg"; else fail "$m at $n nodes: $msg"; fi
  done
  "$cm" "$src/configs/$m.ini" --compute-ms 100 --nodes 1 --json > "$tmp/one.json"
  "$cm" "$src/configs/$m.ini" --compute-ms 100 --nodes 2 --gbit 100 --json > "$tmp/fast.json"
  if msg=$("$py" - "$tmp/one.json" "$tmp/fast.json" <<'PY' 2>&1
import json, sys
one, fast = (json.load(open(f)) for f in sys.argv[1:3])
for k in ("one_call", "overlap", "overlap_perfect"):
    assert one[k]["step_ms"] == 100 and one[k]["wait_ms"] == 0, f"1 node, {k}: {one[k]}"
    assert fast[k]["wait_ms"] >= 0, f"negative wait: {fast[k]}"
assert fast["overlap_perfect"]["wait_ms"] < fast["one_call"]["wait_ms"], f"perfect progress hides nothing: {fast}"
assert fast["overlap"]["wait_ms"] >= fast["one_call"]["wait_ms"], f"buckets moving only in MPI calls hide: {fast}"
print(f"100 Gbit/s: wait {fast['one_call']['wait_ms']:.3f} ms in one call, {fast['overlap']['wait_ms']:.3f} ms with "
      f"buckets moving in MPI calls, {fast['overlap_perfect']['wait_ms']:.3f} ms with perfect progress")
PY
  ); then ok "$m: 1 node waits for nothing; $msg"; else fail "$m: $msg"; fi
done

# a GAN whose D keeps no state computes D(x) ahead, hiding more of G's gradients at 1 Gbit/s with perfect
# progress; with batch norm in D (dcgan-paper) it does not, like gentrain (tests/mpi_replicas.sh)
a=(--compute-ms 400 --nodes 2 --gbit 1 --json)
if msg=$("$py" - "$("$cm" "$src/configs/dcgan.ini" "${a[@]}")" "$("$cm" "$src/configs/dcgan.ini" "${a[@]}" --no-ahead)" \
    "$("$cm" "$src/configs/dcgan-paper.ini" "${a[@]}")" <<'PY' 2>&1
import json, sys
on, off, paper = (json.loads(v) for v in sys.argv[1:4])
assert on["ahead"] and not off["ahead"] and not paper["ahead"], (on["ahead"], off["ahead"], paper["ahead"])
w_on, w_off = on["overlap_perfect"]["wait_ms"], off["overlap_perfect"]["wait_ms"]
assert w_on < 0.8 * w_off, f"D(x) ahead hides little: {w_on} vs {w_off} ms"
assert on["one_call"] == off["one_call"], "one call must not depend on --no-ahead"
assert abs(on["compute_ms"] - off["compute_ms"]) < 1e-9
print(f"dcgan at 1 Gbit/s: wait {w_on:.1f} ms with D(x) ahead, {w_off:.1f} ms without; dcgan-paper (BN in D): not ahead")
PY
); then ok "$msg"; else fail "D(x) ahead: $msg"; fi

# an HDF5 config: the data's shape from --shape; the sizes test_config counts by hand
if out=$("$cm" "$src/configs/dcgan64.ini" --compute-ms 10 --shape 3x64x64 --json) &&
   [ "$("$py" -c 'import json, sys; print(json.loads(sys.argv[1])["gradient_bytes"])' "$out")" = $((4 * (1107907 + 694241))) ]
then ok "dcgan64 with --shape 3x64x64: its gradient bytes"; else fail "dcgan64 with --shape 3x64x64: $out"; fi
if out=$("$cm" "$src/configs/dcgan64.ini" --compute-ms 10 2>&1); then fail "dcgan64 without --shape was accepted"
elif grep -q -- "--shape" <<< "$out"; then ok "dcgan64 without --shape: $out"
else fail "dcgan64 without --shape: $out"; fi

"$cm" "$src/configs/dcgan.ini" --compute-ms 370 --table > "$tmp/table.txt"
rows=$(grep -cE '^ +(2|4|8|16|32|64) ' "$tmp/table.txt" || true)
cells=$(grep -E '^ +64 ' "$tmp/table.txt" | grep -o '%)' | wc -l)
if [ "$rows" = 6 ] && [ "$cells" = 6 ]; then ok "--table: 6 node counts x 3 bandwidths x (one call, buckets)"
else fail "--table: $rows rows, $cells cells in the last"; cat "$tmp/table.txt"; fi

if out=$("$cm" "$tmp/missing.ini" --compute-ms 10 2>&1); then fail "a missing config was accepted"
elif grep -q "missing.ini" <<< "$out"; then ok "a missing config: $out"
else fail "a missing config: the message does not name it: $out"; fi
if out=$("$cm" "$src/configs/dcgan.ini" --compute-ms 0 2>&1); then fail "--compute-ms 0 was accepted"
elif grep -q -- "--compute-ms" <<< "$out"; then ok "--compute-ms 0: $(tail -n 1 <<< "$out")"
else fail "--compute-ms 0: $out"; fi
finish costmodel
