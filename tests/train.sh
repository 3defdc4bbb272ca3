#!/usr/bin/env bash
# Real training runs on Fashion-MNIST through the gentrain program:
#  1. mlpvae for 300 steps: the logged loss must fall well below its start,
#     and the test-set loss must be reported; the memory line of the log and
#     metrics.h5's memory_* attributes agree with the networks' sizes; hwloc's
#     GUI, OpenCL and libxml2 plugins are not loaded unless the user asks;
#  2. determinism: two dcgan runs and two vae runs with the same seed give
#     identical metrics (all but the timing fields), a different seed differs;
#  3. bad input: a typo'd key and a bad value fail with a message naming the
#     file, line and key, and exit non-zero; a finished run dir has nothing to do.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { echo "FAIL: Fashion-MNIST missing: apt-get install -y dataset-fashion-mnist"; exit 1; }
"$py" -c 'import json' || { echo "FAIL: /usr/bin/python3 missing: apt-get install -y python3"; exit 1; }

# 1. the loss goes down
"$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/mlpvae" train.steps=300 train.epochs=0 \
    log.every=50 eval.n=2000 > "$tmp/mlpvae.log"
if "$py" - "$tmp/mlpvae/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rows if "split" not in r]
test = [r for r in rows if r.get("split") == "test"]
first, last = train[0]["loss"], train[-1]["loss"]
print(f"mlpvae loss {first:.2f} -> {last:.2f}, test {test[0]['loss']:.2f}")
assert len(train) == 6 and train[-1]["step"] == 300, train
assert last < 0.75 * first, (first, last)
assert len(test) == 1 and 0 < test[0]["loss"] < 1.2 * last, test
PY
then ok "mlpvae loss goes down"; else fail "mlpvae loss did not go down"; fi
if [ -f "$tmp/mlpvae/config.ini" ] && grep -q '^\[train\]' "$tmp/mlpvae/config.ini"; then ok "resolved config written"
else fail "no resolved config.ini in the run dir"; fi
# the memory account: one log line, and the same bytes as metrics.h5's root attributes
if "$py" - "$tmp/mlpvae.log" "$tmp/mlpvae/metrics.h5" <<'PY'
import h5py, re, sys
log = open(sys.argv[1]).read()
a = dict(h5py.File(sys.argv[2], "r").attrs)
line = re.findall(r"^memory per rank: parameters ([0-9.]+) ([kMG])B, gradients [0-9.]+ [kMG]B, optimizer state "
                  r"[0-9.]+ [kMG]B, activations \(batch (\d+)\) [0-9.]+ [kMG]B, workspaces [0-9.]+ [kMG]B; "
                  r"total ([0-9.]+) ([kMG])B$", log, re.M)
assert len(line) == 1, line
params, pu, batch, total, tu = line[0]
unit = {"k": 1e3, "M": 1e6, "G": 1e9}
n_params = sum(int(n) for n in re.findall(r"^network \w+: .* (\d+) parameters$", log, re.M))
parts = ["parameters", "gradients", "optimizer", "ema", "activations", "workspaces"]
assert a["memory_batch"] == int(batch) == 100, (a, batch)
assert a["memory_gradients_bytes"] == a["memory_parameters_bytes"] == 4 * n_params, (a, n_params)  # no state
assert a["memory_optimizer_bytes"] == 2 * a["memory_gradients_bytes"] and a["memory_ema_bytes"] == 0, a  # Adam
assert a["memory_total_bytes"] == sum(a[f"memory_{p}_bytes"] for p in parts), a
assert abs(float(total) * unit[tu] - a["memory_total_bytes"]) <= 0.05 * unit[tu], (total, a)
assert abs(float(params) * unit[pu] - a["memory_parameters_bytes"]) <= 0.05 * unit[pu], (params, a)
print(f"memory per rank: {a['memory_total_bytes'] / 1e6:.1f} MB")
PY
then ok "the memory line, and the same account in metrics.h5's attributes"; else fail "the memory account"; fi
# hwloc's GUI, OpenCL and libxml2 plugins stay unloaded (src/dist/dist.c: 2.7 MB resident per rank here)
# unless the user sets HWLOC_PLUGINS_BLACKLIST; glibc's loader lists every library it loads (LD_DEBUG=files)
loaded() {  # loaded NAME [VAR=VALUE...]: the shared objects a one-step mlpvae run loads, one per line
  local name=$1; shift
  env "$@" LD_DEBUG=files "$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/hwloc-$name" train.steps=1 \
      train.epochs=0 eval.at_end=false checkpoint.every=0 samples.every=0 > /dev/null 2> "$tmp/hwloc-$name.log"
  sed -n 's/.*calling init: //p' "$tmp/hwloc-$name.log"
}
default=$(loaded default) all=$(loaded all HWLOC_PLUGINS_BLACKLIST=)
if grep -q 'hwloc/hwloc_pci\.so$' <<< "$default" && ! grep -qE 'hwloc_(gl|opencl|xml_libxml)\.so$|libX11|libxml2' <<< "$default"
then ok "hwloc loads its PCI plugin, not the GUI, OpenCL or libxml2 ones"
else fail "hwloc plugins loaded: $(grep -E 'hwloc_|libX11|libxml2' <<< "$default" | tr '\n' ' ')"; fi
if grep -q 'hwloc/hwloc_xml_libxml\.so$' <<< "$all" && grep -q 'hwloc/hwloc_gl\.so$' <<< "$all"
then ok "HWLOC_PLUGINS_BLACKLIST set empty by the user loads every hwloc plugin"
else fail "with HWLOC_PLUGINS_BLACKLIST= the plugins were not loaded: $(grep -E 'hwloc_' <<< "$all" | tr '\n' ' ')"; fi

# 2. determinism
strip() { "$py" -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); r.pop("img_per_s", None); r.pop("elapsed_s", None); print(json.dumps(r, sort_keys=True))' "$1"; }
for model in dcgan vae; do
  for run in a b; do
    "$bin" train "$src/configs/$model.ini" run.dir="$tmp/$model-$run" train.steps=12 train.epochs=0 \
        train.batch_size=16 log.every=3 eval.n=64 > /dev/null
  done
  "$bin" train "$src/configs/$model.ini" run.dir="$tmp/$model-c" train.steps=12 train.epochs=0 \
      train.batch_size=16 log.every=3 eval.n=64 run.seed=2 > /dev/null
  if [ "$(strip "$tmp/$model-a/metrics.jsonl")" = "$(strip "$tmp/$model-b/metrics.jsonl")" ] &&
     [ "$(wc -l < "$tmp/$model-a/metrics.jsonl")" -eq 5 ]; then
    ok "$model: same seed, identical metrics"
  else fail "$model: same seed, different metrics"; fi
  if [ "$(strip "$tmp/$model-a/metrics.jsonl")" != "$(strip "$tmp/$model-c/metrics.jsonl")" ]; then
    ok "$model: another seed, other metrics"
  else fail "$model: the seed changes nothing"; fi
done

# 3. bad input: one clear message, non-zero exit
expect_error() {  # name pattern command...
  local name=$1 pattern=$2; shift 2
  if "$@" > "$tmp/err.out" 2> "$tmp/err.txt"; then fail "$name: exit 0"; return; fi
  if grep -qE "$pattern" "$tmp/err.txt"; then ok "$name"; else fail "$name: message was: $(cat "$tmp/err.txt")"; fi
}
cp "$src/configs/mlpvae.ini" "$tmp/typo.ini"
sed -i 's/^batch_size *=/batchsize =/' "$tmp/typo.ini"
line=$(grep -n '^batchsize' "$tmp/typo.ini" | cut -d: -f1)
expect_error "unknown key names file, line and key" "typo.ini:$line.*batchsize" \
  "$bin" train "$tmp/typo.ini" run.dir="$tmp/typo"
expect_error "bad value on the command line" "train.*batch_size.*abc" \
  "$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/bad" train.batch_size=abc
expect_error "missing config file" "nonexistent.ini" "$bin" train "$tmp/nonexistent.ini"
expect_error "missing data file" "nowhere/train.gz" \
  "$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/nodata" data.train_images=/nowhere/train.gz
# a finished run resumes from its last checkpoint and has nothing left to do
# (tests/ckpt_*.sh test resume itself)
cp "$tmp/mlpvae/metrics.jsonl" "$tmp/metrics.before"
if "$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/mlpvae" train.steps=300 train.epochs=0 > "$tmp/again.log" 2>&1 &&
   grep -q "nothing to do" "$tmp/again.log" && cmp -s "$tmp/metrics.before" "$tmp/mlpvae/metrics.jsonl"; then
  ok "a finished run dir: nothing to do, metrics untouched"
else fail "a finished run dir: $(cat "$tmp/again.log")"; fi
if [ ! -d "$tmp/typo" ]; then ok "a bad config creates no run dir"; else fail "a bad config created its run dir"; fi

finish train
