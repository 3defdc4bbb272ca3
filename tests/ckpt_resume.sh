#!/usr/bin/env bash
# Checkpoints and resume through the gentrain program (issue 4):
#  1. bit-exact resume at 1 and at 2 ranks: 4 steps + resume + 4 steps gives
#     bitwise the same parameters, BN statistics, optimizer state, sampler and
#     RNG position as 8 steps straight (dcgan: BN + dropout + Adam), and the
#     same metrics lines, none duplicated (metrics.jsonl and metrics.h5);
#  2. resume with another number of ranks works and warns;
#  3. checkpoint.keep prunes, run.resume=never starts over;
#  4. `gentrain inspect` and `gentrain sample` on a checkpoint and samples.h5.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1
ck() { printf '%s/checkpoints/step-%08d.h5' "$1" "$2"; }
C=("$src/configs/dcgan.ini" train.batch_size=8 train.epochs=0 data.limit=512 log.every=2 eval.n=32
   checkpoint.every=4 checkpoint.keep=0 samples.every=4 samples.n=16)
same_state() {  # a.h5 b.h5: every dataset of /params /optim /data /rng bitwise equal
  for g in /params /optim /data /rng; do h5diff "$1" "$2" "$g" > /dev/null || return 1; done
}
train_lines() {  # metrics.jsonl without timing fields and test lines
  "$py" -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "split" in r: continue
    for k in ("img_per_s", "elapsed_s", "comm_wait_frac"): r.pop(k, None)
    print(json.dumps(r, sort_keys=True))' "$1"
}

# 1. bit-exact resume
for np in 1 2; do
  run() { if [ "$np" = 1 ]; then "$bin" "$@"; else mpirun -np 2 "$bin" "$@"; fi; }
  a=$tmp/straight$np b=$tmp/resumed$np
  run train "${C[@]}" run.dir="$a" train.steps=8 > "$tmp/a$np.log" 2>&1 || fail "$np rank(s): straight run failed: $(tail -3 "$tmp/a$np.log")"
  run train "${C[@]}" run.dir="$b" train.steps=4 > "$tmp/b$np.log" 2>&1 || fail "$np rank(s): first half failed"
  run train "${C[@]}" run.dir="$b" train.steps=8 > "$tmp/c$np.log" 2>&1 || fail "$np rank(s): resume failed: $(tail -3 "$tmp/c$np.log")"
  if grep -q "resuming from $b/checkpoints/step-00000004.h5" "$tmp/c$np.log"; then ok "$np rank(s): resume says which checkpoint"
  else fail "$np rank(s): no resume message: $(head -3 "$tmp/c$np.log")"; fi
  if same_state "$(ck "$a" 8)" "$(ck "$b" 8)"; then ok "$np rank(s): 4 + resume + 4 steps == 8 steps, bitwise (params, BN stats, Adam m/v/t, sampler, rng)"
  else fail "$np rank(s): resumed state differs from the straight run's"; fi
  if ! same_state "$(ck "$a" 4)" "$(ck "$a" 8)"; then ok "$np rank(s): (the state does change between steps 4 and 8)"; else fail "$np rank(s): h5diff sees no change"; fi
  if [ "$(train_lines "$a/metrics.jsonl")" = "$(train_lines "$b/metrics.jsonl")" ]; then ok "$np rank(s): same metrics lines after resume, none duplicated"
  else fail "$np rank(s): metrics differ: $(diff <(train_lines "$a/metrics.jsonl") <(train_lines "$b/metrics.jsonl") | head -5)"; fi
  if "$py" - "$b/metrics.h5" "$b/metrics.jsonl" <<'PY'
import h5py, json, sys
f = h5py.File(sys.argv[1], "r")
lines = [json.loads(l) for l in open(sys.argv[2]) if '"split"' not in l]
steps = list(f["train/step"][:])
assert f.attrs["format"] == "gentrain-metrics", f.attrs["format"]
assert steps == [r["step"] for r in lines], (steps, [r["step"] for r in lines])
for col in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "img_per_s", "epoch"):
    assert len(f["train/" + col]) == len(steps), col
assert abs(f["train/d_loss"][-1] - lines[-1]["d_loss"]) < 1e-6
assert list(f["test/step"][:]) == [4, 8], list(f["test/step"][:])
assert f["train/step"].maxshape == (None,) and f["train/step"].chunks
PY
  then ok "$np rank(s): metrics.h5 table matches metrics.jsonl (extendible, truncated on resume)"; else fail "$np rank(s): metrics.h5"; fi
done

# 2. another world size: works, warns
rc=0
mpirun -np 1 "$bin" train "${C[@]}" run.dir="$tmp/resumed2" train.steps=10 > "$tmp/w.log" 2>&1 || rc=$?
if [ "$rc" = 0 ] && grep -q "no longer bitwise reproducible" "$tmp/w.log" && grep -q "global batch changes" "$tmp/w.log" \
   && [ -f "$(ck "$tmp/resumed2" 10)" ]; then ok "2 ranks -> 1 rank: resumes, warns, continues"
else fail "world-size change: rc $rc: $(head -5 "$tmp/w.log")"; fi

# 3. keep and resume=never
"$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/keep" train.steps=5 train.epochs=0 train.batch_size=16 data.limit=256 \
  checkpoint.every=1 checkpoint.keep=2 samples.every=0 eval.n=16 log.every=1 > "$tmp/k.log" 2>&1 || true   # checked below
if [ "$(cd "$tmp/keep/checkpoints" && ls)" = "$(printf 'step-00000004.h5\nstep-00000005.h5')" ]; then ok "checkpoint.keep=2 keeps the 2 newest"
else fail "keep: $(ls "$tmp/keep/checkpoints")"; fi
"$bin" train "$src/configs/mlpvae.ini" run.dir="$tmp/keep" train.steps=3 train.epochs=0 train.batch_size=16 data.limit=256 \
  checkpoint.every=1 checkpoint.keep=2 samples.every=0 eval.n=16 log.every=1 run.resume=never > "$tmp/n.log" 2>&1 || true   # checked below
if grep -q "starting over" "$tmp/n.log" && [ "$(cd "$tmp/keep/checkpoints" && ls)" = "$(printf 'step-00000002.h5\nstep-00000003.h5')" ] \
   && [ "$(grep -c '"split"' "$tmp/keep/metrics.jsonl")" = 1 ] && [ "$(head -1 "$tmp/keep/metrics.jsonl" | cut -c1-11)" = '{"step": 1,' ] \
   && [ "$(cd "$tmp"/keep/previous-*/checkpoints && ls)" = "$(printf 'step-00000004.h5\nstep-00000005.h5')" ] \
   && [ "$(grep -c '"step"' "$tmp"/keep/previous-*/metrics.jsonl)" = 6 ]; then
  ok "run.resume=never starts over; the old checkpoints and metrics moved to previous-*/"
else fail "resume=never: $(head -3 "$tmp/n.log"); $(ls "$tmp/keep/checkpoints")"; fi

# 4. inspect and sample
c8=$(ck "$tmp/straight1" 8)
if "$bin" inspect "$c8" > "$tmp/i.txt" 2>&1 && grep -q "a gentrain checkpoint" "$tmp/i.txt" && grep -q "checkpoint verifies" "$tmp/i.txt" \
   && grep -qE "/params/generator/00_dense/weight +float32 +\[12544,100\] +checksum ok" "$tmp/i.txt" \
   && grep -qE "/optim/generator/v/01_batchnorm/weight" "$tmp/i.txt" && grep -q "step = 8" "$tmp/i.txt" \
   && grep -q "world_size = 1" "$tmp/i.txt" && grep -q "| layer1 = dense out=12544 bias=false" "$tmp/i.txt"; then
  ok "inspect prints a checkpoint's attributes, tensors, shapes and verifies it"
else fail "inspect checkpoint: $(head -20 "$tmp/i.txt")"; fi
if "$bin" inspect "$tmp/straight1/samples.h5" > "$tmp/i2.txt" 2>&1 && grep -q "gentrain samples" "$tmp/i2.txt" \
   && grep -qE "/step-00000008 +float32 +\[16,1,28,28\] +checksum ok step=8" "$tmp/i2.txt" && grep -qE "/noise +float32 +\[16,100\]" "$tmp/i2.txt"; then
  ok "inspect prints a samples file"
else fail "inspect samples: $(cat "$tmp/i2.txt")"; fi
if "$bin" inspect --help | grep -q "usage: gentrain inspect" && "$bin" sample --help | grep -q "usage: gentrain sample"; then
  ok "inspect/sample --help"
else fail "--help"; fi
if "$bin" sample "$c8" --n 16 --out "$tmp/grid.png" > "$tmp/s.log" 2>&1 && "$py" - "$tmp/grid.png" "$tmp/straight1/samples.h5" <<'PY'
import sys, zlib, struct
import h5py, numpy as np
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
assert (w, h, depth, ctype) == (4 * 28 + 5 * 2, 4 * 28 + 5 * 2, 8, 0), (w, h, depth, ctype)
# decode (filter bytes per row) and compare the first tile with samples.h5 /step-00000008 image 0
idat = b"".join(data[i + 8:i + 8 + struct.unpack(">I", data[i:i + 4])[0]]
                for i in range(8, len(data)) if data[i + 4:i + 8] == b"IDAT")
raw = zlib.decompress(idat)
rows, prev = [], bytearray(w)
for y in range(h):
    f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
    for x in range(w):
        a = line[x - 1] if x else 0
        b, c = prev[x], prev[x - 1] if x else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
img = np.array(rows, dtype=np.int32)
tile = img[2:30, 2:30]
ref = np.clip(np.rint((h5py.File(sys.argv[2])["step-00000008"][0, 0] + 1) / 2 * 255), 0, 255)
assert np.abs(tile - ref).max() <= 1, np.abs(tile - ref).max()
PY
then ok "sample writes a PNG grid whose first tile is samples.h5's first image"; else fail "sample: $(cat "$tmp/s.log")"; fi

finish ckpt_resume
