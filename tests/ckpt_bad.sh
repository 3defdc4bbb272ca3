#!/usr/bin/env bash
# Bad input around checkpoints, samples and the run directory (issue 4): each
# gives a clear message and a non-zero exit (or, on resume, a warning and a
# fallback to an older checkpoint), and loses nothing:
#  1. a truncated checkpoint, 2. a bit-flipped one (in tensor data, and in the
#  config attribute), 3. a checkpoint of another architecture, 4. a samples.h5
#  (and a metrics.h5) that is not ours, 5. a run dir that cannot be written,
#  6. a checkpoint write that fails part-way (RLIMIT_FSIZE via ulimit -f): the
#  previous checkpoint survives intact, the run says so and exits non-zero.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1
expect_error() {  # name pattern command...: non-zero exit and a message matching pattern
  local name=$1 pattern=$2; shift 2
  if "$@" > "$tmp/err.out" 2> "$tmp/err.txt"; then fail "$name: exit 0"; return 0; fi
  if grep -qE "$pattern" "$tmp/err.txt" "$tmp/err.out"; then ok "$name"; else fail "$name: message was: $(head -c 600 "$tmp/err.txt")"; fi
}
C=("$src/configs/mlpvae.ini" train.epochs=0 train.batch_size=16 data.limit=256 log.every=1 eval.n=16
   checkpoint.every=2 checkpoint.keep=0 samples.every=2 samples.n=8)
"$bin" train "${C[@]}" run.dir="$tmp/good" train.steps=4 > "$tmp/good.log" 2>&1 || { echo "FAIL: setup run: $(tail "$tmp/good.log")"; exit 1; }
c2=$tmp/good/checkpoints/step-00000002.h5 c4=$tmp/good/checkpoints/step-00000004.h5

resume_skips() {  # name dir: the damaged step-4 is skipped with a warning, step 2 is used
  local name=$1 dir=$2
  if "$bin" train "${C[@]}" run.dir="$dir" train.steps=6 > "$tmp/r.log" 2>&1 \
     && grep -q "warning: skipping checkpoint $dir/checkpoints/step-00000004.h5" "$tmp/r.log" \
     && grep -q "resuming from $dir/checkpoints/step-00000002.h5" "$tmp/r.log" \
     && [ -f "$dir/checkpoints/step-00000006.h5" ]; then ok "$name: resume skips it with a warning and uses step 2"
  else fail "$name: resume: $(grep -v '^  ' "$tmp/r.log" | head -5)"; fi
}

# 1. truncated
cp -r "$tmp/good" "$tmp/trunc"
truncate -s $(( $(stat -c %s "$c4") / 2 )) "$tmp/trunc/checkpoints/step-00000004.h5"
cp "$tmp/trunc/checkpoints/step-00000004.h5" "$tmp/trunc4.h5"
expect_error "truncated checkpoint: sample fails" "cannot sample from .*trunc4.h5" "$bin" sample "$tmp/trunc4.h5" --out "$tmp/x.png"
expect_error "truncated checkpoint: inspect fails" "trunc4.h5" "$bin" inspect "$tmp/trunc4.h5"
resume_skips "truncated checkpoint" "$tmp/trunc"

# 2. bit flips: in a tensor's data (Fletcher32) and in the config attribute (text_hash)
cp -r "$tmp/good" "$tmp/flip"
off=$("$py" -c 'import h5py,sys
d = h5py.File(sys.argv[1], "r")["/params/decoder/02_dense/weight"]
print(d.id.get_chunk_info(0).byte_offset + 12345)' "$c4")
cp "$c4" "$tmp/flip4.h5"
"$py" - "$tmp/flip4.h5" "$off" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x10]))
PY
cp "$tmp/flip4.h5" "$tmp/flip/checkpoints/step-00000004.h5"
expect_error "bit-flipped tensor: sample fails naming the checksum" "checksum|does not read back" "$bin" sample "$tmp/flip4.h5" --out "$tmp/x.png"
if "$bin" inspect "$tmp/flip4.h5" > "$tmp/i.txt" 2>&1; then fail "bit-flipped tensor: inspect exit 0"
elif grep -qE "/params/decoder/02_dense/weight .*DAMAGED" "$tmp/i.txt"; then ok "bit-flipped tensor: inspect names the damaged dataset"
else fail "bit-flipped tensor: inspect: $(tail -5 "$tmp/i.txt")"; fi
resume_skips "bit-flipped tensor" "$tmp/flip"
cp "$c4" "$tmp/flipcfg.h5"
"$py" - "$tmp/flipcfg.h5" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
i = data.find(b"layer2 = dense out=400")
assert i > 0
data[i + 20] ^= 0x01   # out=400 -> out=401 in the stored config text
open(sys.argv[1], "wb").write(bytes(data))
PY
expect_error "bit-flipped config attribute: detected" "do not match their hash|checksum" "$bin" sample "$tmp/flipcfg.h5" --out "$tmp/x.png"

# 3. another architecture / config
cp -r "$tmp/good" "$tmp/arch"
sum_before=$(md5sum "$tmp"/arch/checkpoints/*.h5 "$tmp/arch/config.ini" "$tmp/arch/metrics.jsonl")
expect_error "another architecture: error names the key" "\[encoder\] layer2 = 'dense out=400' there, but 'dense out=300'" \
  "$bin" train "${C[@]}" run.dir="$tmp/arch" train.steps=6 "encoder.layer2=dense out=300"
expect_error "another model: error names it" "holds a vae model|\[model\]|\[encoder\]|\[decoder\]" \
  "$bin" train "$src/configs/mlpgan.ini" train.epochs=0 train.batch_size=16 data.limit=256 run.dir="$tmp/arch" train.steps=6
if [ "$sum_before" = "$(md5sum "$tmp"/arch/checkpoints/*.h5 "$tmp/arch/config.ini" "$tmp/arch/metrics.jsonl")" ]; then
  ok "another architecture: checkpoints, config.ini and metrics untouched"
else fail "checkpoints, config.ini or metrics changed"; fi
if "$bin" train "${C[@]}" run.dir="$tmp/arch" train.steps=6 optim.lr=5e-4 > "$tmp/lr.log" 2>&1 && grep -q "warning: settings differ.*optim.lr" "$tmp/lr.log"; then
  ok "another learning rate: resumes with a warning naming optim.lr"
else fail "lr change: $(grep -v '^  ' "$tmp/lr.log" | head -3)"; fi

# 4. files that are not ours
mkdir -p "$tmp/foreign"
"$py" -c 'import h5py,sys; f = h5py.File(sys.argv[1], "w"); f["images"] = [1.0, 2.0]' "$tmp/foreign/samples.h5"
sum_before=$(md5sum < "$tmp/foreign/samples.h5")
expect_error "a samples.h5 that is not ours: error" "samples.h5 is not a gentrain-samples file" \
  "$bin" train "${C[@]}" run.dir="$tmp/foreign" train.steps=2
if [ "$sum_before" = "$(md5sum < "$tmp/foreign/samples.h5")" ]; then ok "the foreign samples.h5 is left as it was"
else fail "foreign samples.h5 modified"; fi
mkdir -p "$tmp/foreign2" && echo "not hdf5" > "$tmp/foreign2/metrics.h5"
expect_error "a metrics.h5 that is not HDF5: error" "metrics.h5 exists but is not an HDF5 file" \
  "$bin" train "${C[@]}" run.dir="$tmp/foreign2" train.steps=2
expect_error "sample on a samples file: error" "not a gentrain checkpoint" "$bin" sample "$tmp/good/samples.h5"
expect_error "sample on a non-HDF5 file: error" "not an HDF5 file" "$bin" sample "$tmp/foreign2/metrics.h5"
expect_error "inspect on a missing file: error" "nothing.h5" "$bin" inspect "$tmp/nothing.h5"

# 5. a run dir that cannot be written
expect_error "run dir under a regular file: error" "run directory .* cannot be created" \
  "$bin" train "${C[@]}" run.dir="$tmp/foreign2/metrics.h5/run" train.steps=2
if [ "$(id -u)" != 0 ]; then
  mkdir -p "$tmp/ro" && chmod 555 "$tmp/ro"
  expect_error "read-only run dir: error" "not writable|cannot be created|Permission denied" "$bin" train "${C[@]}" run.dir="$tmp/ro" train.steps=2
  chmod 755 "$tmp/ro"
else
  echo "(running as root: permission bits cannot make a directory unwritable; the read-only case is tested for other users)"
fi
expect_error "read-only file system: error" "cannot be created|not writable|Read-only" \
  "$bin" train "${C[@]}" run.dir=/proc/gentrain-run train.steps=2

# 6. a checkpoint write that fails part-way: RLIMIT_FSIZE below the checkpoint
# size. `ulimit -f` before the start would also break MPI_Init (its shared
# memory files), so the limit is put on the running process with prlimit once
# it trains: its next checkpoint (step 400) hits the limit half-way.
cp -r "$tmp/good" "$tmp/full"
rm "$tmp/full/checkpoints/step-00000004.h5"
sum2=$(md5sum < "$tmp/full/checkpoints/step-00000002.h5")
size=$(stat -c %s "$c2")
lines=$(wc -l < "$tmp/full/metrics.jsonl")
"$bin" train "${C[@]}" run.dir="$tmp/full" train.steps=400 checkpoint.every=400 samples.every=0 > "$tmp/f.out" 2> "$tmp/f.err" &
pid=$!
for _ in $(seq 200); do [ "$(wc -l < "$tmp/full/metrics.jsonl")" -gt "$lines" ] && break; sleep 0.05; done
prlimit --pid "$pid" --fsize=$(( size / 2 )) || fail "prlimit failed"
rc=0
wait "$pid" || rc=$?
if [ "$rc" -eq 1 ] && grep -q "checkpoint of step 400 could not be written" "$tmp/f.err" \
   && grep -q "The previous checkpoint $tmp/full/checkpoints/step-00000002.h5 is intact" "$tmp/f.err"; then
  ok "write fails part-way: non-zero exit ($rc), says which checkpoint failed and that the previous one is intact"
else fail "write fails part-way: rc $rc: $(cat "$tmp/f.err")"; fi
if [ "$sum2" = "$(md5sum < "$tmp/full/checkpoints/step-00000002.h5")" ] &&
   "$bin" inspect "$tmp/full/checkpoints/step-00000002.h5" > /dev/null; then
  ok "the previous checkpoint is intact (same bytes, verifies)"
else fail "previous checkpoint damaged"; fi
if [ "$(ls -A "$tmp/full/checkpoints")" = "step-00000002.h5" ]; then ok "no partial or temporary file left"
else fail "left: $(ls -A "$tmp/full/checkpoints")"; fi
if "$bin" train "${C[@]}" run.dir="$tmp/full" train.steps=6 > "$tmp/f2.log" 2>&1 && grep -q "resuming from $tmp/full/checkpoints/step-00000002.h5" "$tmp/f2.log"; then
  ok "after the failure, the same command resumes from the surviving checkpoint"
else fail "resume after failure: $(grep -v '^  ' "$tmp/f2.log" | head -3)"; fi

finish ckpt_bad
