#!/usr/bin/env bash
# Bad input and bad command lines (the reliability issue), end to end
# through the program; every case is a row of the README's "Faults and bad
# input":
#  1. test images of another shape (14x14, 32x32) beside 28x28 training
#     data, and test labels out of the training labels' range: an error
#     before any training; no run directory is created, and an existing run's
#     files do not change;
#  2. silently accepted nonsense, now refused: optim.lr=0, optim.eps=0 (on
#     the command line: exit 2; in a config file: exit 1 naming file:line),
#     data.limit above the file's examples, bytes after an IDX file's data,
#     the same override twice (a warning; the last one wins), a pad so large
#     that the run would allocate until killed (the memory check says how
#     much, also under an address-space limit);
#  3. messages: an out= out of range names the real range, an empty run.dir=,
#     a bad discriminator override is reported at its layer line, HDF5 files
#     that cannot be opened say why (truncated; left open by a killed writer,
#     with the h5clear advice, which works);
#  4. exit codes: every command's bad options and arguments exit 2, other
#     errors 1; FIFOs given as a config, data or file to inspect are refused
#     at once (they used to hang);
#  5. SIGINT and SIGHUP stop a run with a checkpoint and exit 75, as SIGTERM.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1
C=("$src/configs/mlpvae.ini" train.epochs=0 train.batch_size=16 data.limit=256 log.every=1 eval.n=16
   checkpoint.every=2 checkpoint.keep=0 samples.every=2 samples.n=8)
lines() { grep -v '^  ' "$1" | head -c 1500; }
check() {  # NAME COMMAND...: ok if the command succeeds
  local name=$1; shift
  if "$@"; then ok "$name"; else fail "$name"; fi
}
expect() {  # NAME RC PATTERN COMMAND...: exit code RC and a message matching PATTERN
  local name=$1 want=$2 pattern=$3 rc=0; shift 3
  timeout -k 5 120 "$@" > "$tmp/out.txt" 2>&1 || rc=$?
  if [ "$rc" != "$want" ]; then fail "$name: exit $rc, not $want: $(lines "$tmp/out.txt")"; return 0; fi
  if grep -qE -- "$pattern" "$tmp/out.txt"; then ok "$name (exit $rc)"
  else fail "$name: no message matching '$pattern': $(lines "$tmp/out.txt")"; fi
}
state() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum); }  # every file of a directory

# IDX files: idx FILE MAGIC DIMS... < bytes
"$py" - "$tmp" <<'PY'
import gzip, struct, sys
import numpy as np
d = sys.argv[1]
def idx(name, arr, magic):
    with open(f"{d}/{name}", "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in arr.shape) + arr.astype(np.uint8).tobytes())
rng = np.random.default_rng(0)
for side in (14, 28, 32):
    idx(f"images{side}.idx", rng.integers(0, 256, (100, side, side)), 0x803)
idx("labels.idx", rng.integers(0, 10, 100), 0x801)
bad = rng.integers(0, 10, 100); bad[57] = 12
idx("labels12.idx", bad, 0x801)
# the real test labels with 3 bytes after the data the header announces
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").read()
open(f"{d}/trailing.idx", "wb").write(raw + b"\x00\x01\x02")
PY

# 1. test data that does not fit the training data
for side in 14 32; do
  expect "test images ${side}x$side beside 28x28 training images: an error before training" 1 \
    "the test images $tmp/images$side.idx are 1x${side}x$side but the training images .* are 1x28x28" \
    "$bin" train "${C[@]}" run.dir="$tmp/shape$side" train.steps=2 data.test_images="$tmp/images$side.idx" data.test_labels="$tmp/labels.idx"
  if [ ! -e "$tmp/shape$side" ] && ! grep -q "^step" "$tmp/out.txt"; then ok "... no step trained, no run directory created"
  else fail "... a run directory or a step: $(ls "$tmp/shape$side" 2>&1)"; fi
done
expect "test labels up to 12, training labels up to 9: an error before training" 1 "labels12.idx has labels up to 12 but the training labels .* go only up to 9" \
  "$bin" train "${C[@]}" run.dir="$tmp/labels" train.steps=2 data.test_images="$tmp/images28.idx" data.test_labels="$tmp/labels12.idx"
check "... no run directory created" test ! -e "$tmp/labels"
"$bin" train "${C[@]}" run.dir="$tmp/existing" train.steps=2 > "$tmp/e.log" 2>&1 || fail "setup run: $(lines "$tmp/e.log")"
before=$(state "$tmp/existing")
expect "an existing run resumed with test images of another shape: an error" 1 "are 1x32x32 but the training images" \
  "$bin" train "${C[@]}" run.dir="$tmp/existing" train.steps=4 data.test_images="$tmp/images32.idx" data.test_labels="$tmp/labels.idx"
check "... nothing in the existing run directory changed" test "$before" = "$(state "$tmp/existing")"

# 2. nonsense that used to be accepted
expect "optim.lr=0 on the command line: a usage error naming the range" 2 'command line: \[optim\] lr = "0": expected a number in \(0, 10\]' \
  "$bin" train "${C[@]}" run.dir="$tmp/x" train.steps=2 optim.lr=0
expect "optim.eps=0 on the command line: a usage error" 2 'command line: \[optim\] eps = "0": expected a number in \(0, 1\]' \
  "$bin" train "${C[@]}" run.dir="$tmp/x" train.steps=2 optim.eps=0
sed 's/^lr *=.*/lr = 0/' "$src/configs/mlpvae.ini" > "$tmp/lr0.ini"
expect "lr = 0 in a config file: an error naming the file and line" 1 "lr0.ini:$(grep -n '^lr = 0' "$tmp/lr0.ini" | cut -d: -f1): \[optim\] lr = \"0\"" \
  "$bin" train "$tmp/lr0.ini" run.dir="$tmp/x" train.steps=2
expect "data.limit above the file's examples: an error" 1 "holds 60000 images, fewer than the 70000 asked for \(\[data\] limit\)" \
  "$bin" train "${C[@]}" run.dir="$tmp/x" train.steps=2 data.limit=70000
expect "bytes after an IDX file's data: an error" 1 "trailing.idx: 3 bytes follow the data that the IDX header announces" \
  "$bin" train "${C[@]}" run.dir="$tmp/x" train.steps=2 data.test_labels="$tmp/trailing.idx"
expect "the same override twice: a warning, the last one wins" 0 'warning: command line: train.steps is given twice \("5", then "2"\): the last one is used' \
  "$bin" train "${C[@]}" run.dir="$tmp/twice" train.steps=5 train.steps=2
check "... config.ini says steps = 2" grep -q '^steps = 2$' "$tmp/twice/config.ini"
t0=$(date +%s)
expect "pad=1000: the memory check says how much it would take" 1 "the model needs [0-9.]+ GB for batches of 64 .* more than (this machine's memory|this process's .*) of [0-9.]+ GB" \
  "$bin" train "$src/configs/vae.ini" run.dir="$tmp/x" train.steps=2 "encoder.layer1=conv2d out=32 kernel=3 pad=1000"
expect "pad=100 (6 GB) under a 3 GB address-space limit: refused before allocating" 1 \
  "the model needs [0-9.]+ GB .* more than this process's address-space limit \(ulimit -v\) of 3.1 GB" \
  bash -c 'ulimit -v 3000000; exec "$@"' - "$bin" train "$src/configs/vae.ini" run.dir="$tmp/x" train.steps=2 "encoder.layer1=conv2d out=32 kernel=3 pad=100"
check "... both within seconds ($(( $(date +%s) - t0 )) s)" test $(( $(date +%s) - t0 )) -lt 60
check "no run directory for any of these errors" test ! -e "$tmp/x"

# 3. messages
expect "out=2000000000 names the real range" 2 'out=2000000000: expected an integer in \[1, 1073741824\]' \
  "$bin" train "${C[@]}" run.dir="$tmp/x" "encoder.layer2=dense out=2000000000"
expect "an empty run.dir= is refused" 2 'command line: \[run\] dir is empty' "$bin" train "${C[@]}" run.dir=
expect "a discriminator layer that does not fit is reported at its layer line" 1 \
  'command line: \[discriminator\] layer1 = "conv2d out=64 kernel=40": net discriminator, layer 0 \(conv2d' \
  "$bin" train "$src/configs/dcgan.ini" run.dir="$tmp/x" "discriminator.layer1=conv2d out=64 kernel=40"
check "... and not at [model] type" test -z "$(grep '\[model\] type' "$tmp/out.txt")"
c2=$tmp/existing/checkpoints/step-00000002.h5
head -c 4000 "$c2" > "$tmp/truncated.h5"
expect "inspect a truncated HDF5 file: says it is truncated (no 'no reason on HDF5's error stack')" 1 \
  "truncated|damaged" "$bin" inspect "$tmp/truncated.h5"
check "... gives a cause" test -z "$(grep 'no reason' "$tmp/out.txt")"
cp "$tmp/existing/metrics.h5" "$tmp/open.h5"
("$py" - "$tmp/open.h5" <<'PY' || true
import h5py, os, signal, sys
f = h5py.File(sys.argv[1], "r+")   # a writer that is killed while it has the file open
f.attrs["x"] = 1
f.flush()
os.kill(os.getpid(), signal.SIGKILL)
PY
) 2> /dev/null   # (the subshell's "Killed" notice goes to /dev/null)
expect "inspect a file left open by a killed writer: says so, with the h5clear advice" 1 \
  "marked as open for writing.*h5clear -s $tmp/open.h5" "$bin" inspect "$tmp/open.h5"
h5clear -s "$tmp/open.h5"
expect "... and the advice works: after h5clear -s it reads" 0 "gentrain metrics" "$bin" inspect "$tmp/open.h5"

# 4. exit codes of every command
usage() {  # NAME ARGS...: exit code 2 and a usage message
  local name=$1 rc=0; shift
  timeout -k 5 60 "$bin" "$@" > "$tmp/out.txt" 2>&1 || rc=$?
  if [ "$rc" = 2 ] && grep -qiE "usage|unknown|expected|needs|no CHECKPOINT|takes no|refus|bad setting|is the checkpoint" "$tmp/out.txt"; then ok "exit 2: $name"
  else fail "$name: exit $rc, not 2: $(head -c 400 "$tmp/out.txt")"; fi
}
usage "no command"
usage "unknown command" frobnicate
usage "an option instead of a command" --frobnicate
usage "--version with an argument" --version x
usage "train without a config" train
usage "train with an option instead of the config" train --steps=3
usage "train with an unknown option" train "$src/configs/mlpvae.ini" --steps=3
usage "train with a setting without '='" train "$src/configs/mlpvae.ini" train.steps
usage "train with a setting without a section" train "$src/configs/mlpvae.ini" steps=3
usage "train with an unknown key" train "$src/configs/mlpvae.ini" train.stepz=3
usage "train with an unknown section" train "$src/configs/mlpvae.ini" trian.steps=3
usage "train with a bad value" train "$src/configs/mlpvae.ini" train.steps=many
usage "train with a bad layer option" train "$src/configs/mlpvae.ini" "encoder.layer2=dense outt=3"
usage "sample without a checkpoint" sample
usage "sample with an unknown option" sample "$c2" --size 3
usage "sample --n out of range" sample "$c2" --n 0
usage "sample --n without a value" sample "$c2" --n
usage "sample --seed not a number" sample "$c2" --seed x
usage "sample with two checkpoints" sample "$c2" "$c2"
usage "sample --out onto the checkpoint" sample "$c2" --out "$c2"
usage "inspect without a file" inspect
usage "inspect with two files" inspect "$c2" "$c2"
usage "inspect with an option" inspect --all
usage "help without a topic" help
usage "help with an unknown topic" help everything
usage "help with an unknown option" help keys --html
for cmd in train sample inspect; do
  rc=0; "$bin" "$cmd" --help > "$tmp/out.txt" 2>&1 || rc=$?
  check "exit 0: $cmd --help (exit $rc)" test "$rc" = 0
  check "... prints the usage of $cmd" grep -q "^usage: gentrain $cmd" "$tmp/out.txt"
done
rc=0; "$bin" train "$src/configs/mlpvae.ini" --help > "$tmp/out.txt" 2>&1 || rc=$?
check "exit 0: train CONFIG --help (exit $rc)" test "$rc" = 0
check "... prints the help" grep -q "^usage: gentrain train" "$tmp/out.txt"
expect "train with a missing config file: exit 1" 1 "cannot open config file $tmp/none.ini" "$bin" train "$tmp/none.ini"
mkfifo "$tmp/fifo"
expect "inspect a FIFO: refused at once" 1 "cannot inspect $tmp/fifo: not a regular file" "$bin" inspect "$tmp/fifo"
expect "a FIFO as the config: refused at once" 1 "config file $tmp/fifo is not a regular file" "$bin" train "$tmp/fifo"
expect "a FIFO as a data file: refused at once" 1 "$tmp/fifo: not a regular file .*give an IDX file" \
  "$bin" train "${C[@]}" run.dir="$tmp/x" data.train_images="$tmp/fifo"
expect "sample from a FIFO: refused at once" 1 "fifo" "$bin" sample "$tmp/fifo"

# 5. SIGINT and SIGHUP checkpoint like SIGTERM
for sig in INT HUP; do
  d=$tmp/sig$sig
  "$bin" train "${C[@]}" run.dir="$d" train.steps=100000 checkpoint.every=0 samples.every=0 > "$tmp/$sig.log" 2>&1 &
  pid=$!
  for _ in $(seq 400); do [ -s "$d/metrics.jsonl" ] && break; sleep 0.02; done
  kill -"$sig" "$pid"
  rc=0; wait "$pid" || rc=$?
  # shellcheck disable=SC2012  # gentrain's checkpoint names
  if [ "$rc" = 75 ] && grep -q "stopping at step [0-9]* on SIG$sig: checkpoint written" "$tmp/$sig.log" && [ "$(ls "$d/checkpoints" | wc -l)" = 1 ]; then
    ok "SIG$sig: checkpoint written, exit 75"
  else fail "SIG$sig: exit $rc: $(lines "$tmp/$sig.log")"; fi
done

finish faults_input
