#!/usr/bin/env bash
# The run directory under faults (the reliability issue), end to end through
# the program; every case is a row of the README's "Faults and bad input":
#  1. a damaged newest checkpoint with checkpoint.keep=1: moved to
#     checkpoints/damaged/, the good one resumed, the run finishes, and a
#     second run resumes again (cleanup once deleted every good checkpoint);
#  2. checkpoints that verify but have the wrong structure (a missing
#     /optim/<net>/v, a tensor of another shape): inspect exits 1 naming the
#     tensor; resume falls back to the older checkpoint and moves the bad one
#     to damaged/;
#  3. the lock: a second run on a live run's directory exits 1 naming the
#     holder (pid, host), run.resume=never moves nothing of a live run, and a
#     SIGKILLed holder's lock is gone (the kernel releases it);
#  4. a run.dir and data paths of ~300 characters: train, resume, sample,
#     inspect; a run.dir of 4000 characters (the longest accepted) too; one
#     of 5000: one short usage error; a data file, checkpoint or inspected
#     file path of 5000: the reason ("File name too long") ends the message,
#     the path is shortened in the middle;
#  5. `gentrain sample`: --out onto the checkpoint (directly or through a
#     symlink) or onto a file that is not a PNG is refused (exit 2, the file
#     unchanged); a PNG write that fails (RLIMIT_FSIZE) leaves the old
#     picture intact and no temporary file;
#  6. the advice the program prints works when followed: a run that failed
#     before its first checkpoint (a failing first checkpoint write, a failing
#     step) reruns with the same command; a finished run whose test-set line
#     is missing evaluates on the rerun; "run.resume=never" after an
#     architecture change and after all checkpoints turned out damaged; "move
#     it away" for a foreign samples.h5; a checkpoint beyond a lowered
#     train.steps is a finished run.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OPENBLAS_NUM_THREADS=1
C=("$src/configs/mlpvae.ini" train.epochs=0 train.batch_size=16 data.limit=256 log.every=1 eval.n=16
   checkpoint.every=2 checkpoint.keep=0 samples.every=2 samples.n=8)
ck() { printf '%s/checkpoints/step-%08d.h5' "$1" "$2"; }
lines() { grep -v '^  ' "$1" | head -c 1500; }  # a log without the network tables
# expect NAME RC PATTERN COMMAND...: exit code RC and a message (stdout or stderr) matching PATTERN
expect() {
  local name=$1 want=$2 pattern=$3 rc=0; shift 3
  "$@" > "$tmp/out.txt" 2>&1 || rc=$?
  if [ "$rc" != "$want" ]; then fail "$name: exit $rc, not $want: $(lines "$tmp/out.txt")"; return 0; fi
  if grep -qE -- "$pattern" "$tmp/out.txt"; then ok "$name (exit $rc)"
  else fail "$name: no message matching '$pattern': $(lines "$tmp/out.txt")"; fi
}

# 1. a damaged newest checkpoint with keep=1
d=$tmp/keep1
"$bin" train "${C[@]}" checkpoint.keep=1 run.dir="$d" train.steps=4 > "$tmp/k1.log" 2>&1 || fail "keep=1 setup: $(lines "$tmp/k1.log")"
head -c 3000 "$(ck "$d" 4)" > "$(ck "$d" 6)"   # a truncated copy sorts newest
expect "damaged newest checkpoint, keep=1: skipped with a warning, step 4 resumed, the run finishes" 0 \
  "resuming from $d/checkpoints/step-00000004.h5" "$bin" train "${C[@]}" checkpoint.keep=1 run.dir="$d" train.steps=8
if grep -q "warning: skipping checkpoint $d/checkpoints/step-00000006.h5: .*moved it to $d/checkpoints/damaged/step-00000006.h5" "$tmp/out.txt" &&
   [ -f "$d/checkpoints/damaged/step-00000006.h5" ] && [ "$(cd "$d/checkpoints" && echo step-*)" = step-00000008.h5 ]; then
  ok "damaged newest checkpoint, keep=1: it is in damaged/, the good ones were kept until a newer one replaced them"
else fail "keep=1: checkpoints now: $(ls -R "$d/checkpoints")"; fi
expect "damaged newest checkpoint, keep=1: a second run resumes again" 0 "resuming from $d/checkpoints/step-00000008.h5" \
  "$bin" train "${C[@]}" checkpoint.keep=1 run.dir="$d" train.steps=10

# 2. checkpoints that verify but have the wrong structure
"$bin" train "${C[@]}" run.dir="$tmp/good" train.steps=4 > "$tmp/good.log" 2>&1 || fail "setup run: $(lines "$tmp/good.log")"
for kind in missing shape; do
  d=$tmp/struct-$kind
  cp -r "$tmp/good" "$d"
  "$py" - "$(ck "$d" 4)" "$kind" <<'PY'
import h5py, sys
f = h5py.File(sys.argv[1], "r+")
if sys.argv[2] == "missing":
    del f["optim/encoder/v"]                        # Adam's second moments of one network
else:
    b = f["params/decoder/02_dense/bias"][:]
    del f["params/decoder/02_dense/bias"]           # the same tensor, 700 of its 784 values, checksummed
    f.create_dataset("params/decoder/02_dense/bias", data=b[:700], chunks=True, fletcher32=True)
f.close()
PY
  case $kind in missing) tensor=/optim/encoder/v ;; *) tensor=/params/decoder/02_dense/bias ;; esac
  expect "checkpoint with a $kind tensor: inspect exits 1 naming it" 1 "checkpoint does NOT verify: .*$tensor" \
    "$bin" inspect "$(ck "$d" 4)"
  expect "checkpoint with a $kind tensor: resume falls back to step 2" 0 "resuming from $d/checkpoints/step-00000002.h5" \
    "$bin" train "${C[@]}" run.dir="$d" train.steps=6
  if grep -q "skipping checkpoint $d/checkpoints/step-00000004.h5: .*$tensor" "$tmp/out.txt" &&
     [ -f "$d/checkpoints/damaged/step-00000004.h5" ] && [ -f "$(ck "$d" 6)" ]; then
    ok "checkpoint with a $kind tensor: moved to damaged/ with the reason, the run went on to step 6"
  else fail "$kind tensor: $(ls -R "$d/checkpoints")"; fi
done

# 3. the lock
d=$tmp/locked
"$bin" train "${C[@]}" run.dir="$d" train.steps=1000000 checkpoint.every=20 samples.every=0 log.every=20 > "$tmp/holder.log" 2>&1 &
holder=$!
for _ in $(seq 600); do [ -f "$(ck "$d" 20)" ] && break; sleep 0.05; done
expect "lock: a second run on a live run's directory exits 1 naming the holder" 1 \
  "run directory $d is in use by another gentrain run: pid $holder on host $(hostname)" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=8
listing() { find "$1" -mindepth 1 -maxdepth 1 ! -name 'samples*' -printf '%f ' | tr ' ' '\n' | sort | tr '\n' ' '; }
before=$(listing "$d")
expect "lock: run.resume=never on a live run's directory exits 1" 1 "in use by another gentrain run: pid $holder" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=8 run.resume=never
after=$(listing "$d")
if [ "$before" = "$after" ] && ! ls -d "$d"/previous-* > /dev/null 2>&1 && kill -0 "$holder"; then
  ok "lock: run.resume=never moved nothing of the live run ($after)"
else fail "lock: the live run's directory changed: '$before' -> '$after'"; fi
kill -KILL "$holder"; wait "$holder" 2> /dev/null || true
expect "lock: after SIGKILL of the holder the kernel has released the lock: a new run starts over" 0 \
  "starting over in $d" "$bin" train "${C[@]}" run.dir="$d" train.steps=4 run.resume=never

# 4. paths of ~300 characters: run.dir and the data files
long=$tmp
while [ ${#long} -lt 280 ]; do long=$long/a-rather-long-directory-name; done
mkdir -p "$long/data"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  ln -s "/usr/share/datasets/fashion-mnist/$f.gz" "$long/data/$f.gz"
done
L=("${C[@]}" data.train_images="$long/data/train-images-idx3-ubyte.gz" data.train_labels="$long/data/train-labels-idx1-ubyte.gz"
   data.test_images="$long/data/t10k-images-idx3-ubyte.gz" data.test_labels="$long/data/t10k-labels-idx1-ubyte.gz")
d=$long/run
echo "(run.dir has ${#d} characters, the data paths $((${#long} + 30)))"
expect "long paths: train" 0 "checkpoint: step 4 -> $d/checkpoints/step-00000004.h5" "$bin" train "${L[@]}" run.dir="$d" train.steps=4
expect "long paths: resume" 0 "resuming from $d/checkpoints/step-00000004.h5" "$bin" train "${L[@]}" run.dir="$d" train.steps=6
expect "long paths: sample" 0 "64 samples of the vae at step 6" "$bin" sample "$(ck "$d" 6)" --out "$d/grid.png"
expect "long paths: inspect" 0 "checkpoint verifies" "$bin" inspect "$(ck "$d" 6)"
if grep -q "^data.*train_images = $long/data/train-images" "$d/config.ini" 2>/dev/null || grep -q "train_images = $long" "$d/config.ini"; then
  ok "long paths: config.ini holds the whole data path"
else fail "long paths: config.ini lacks the data path"; fi
# 4b. a run.dir of exactly the longest accepted (4000 characters; its files'
#     paths come within ~60 of Linux's PATH_MAX, 4096), and one beyond
long=$tmp/x
while [ ${#long} -lt 3940 ]; do long=$long/a-rather-long-directory-name-for-the-run-dir-test; done
d=$long/$(printf '%*s' $((4000 - ${#long} - 1)) '' | tr ' ' y)
echo "(run.dir has ${#d} characters)"
expect "run.dir of 4000 characters: train" 0 "checkpoint: step 2 -> $d/checkpoints/step-00000002.h5" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=2
expect "run.dir of 4000 characters: resume" 0 "resuming from $d/checkpoints/step-00000002.h5" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=4
expect "run.dir of 4000 characters: sample" 0 "samples of the vae at step 4" "$bin" sample "$(ck "$d" 4)" --out "$d/grid.png"
expect "run.dir of 4000 characters: inspect" 0 "checkpoint verifies" "$bin" inspect "$(ck "$d" 4)"
d=$long/$(printf '%*s' $((5000 - ${#long} - 1)) '' | tr ' ' y)
expect "run.dir of 5000 characters: one usage error naming the limit" 2 \
  "^gentrain: error: command line: \[run\] dir has 5000 characters; at most 4000 are supported" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=2
if [ "$(wc -l < "$tmp/out.txt")" = 1 ] && [ "$(wc -c < "$tmp/out.txt")" -lt 600 ]; then
  ok "run.dir of 5000 characters: the message is one short line"
else fail "run.dir of 5000 characters: $(wc -lc < "$tmp/out.txt") lines and bytes of output"; fi
# paths beyond PATH_MAX given to the other commands: the reason survives at
# the end of a message shortened in the middle
expect "a data path of 5000 characters: the reason at the end of one line" 1 \
  "^gentrain: error: $tmp/x/.*\[\.\.\. [0-9]+ characters \.\.\.\].*/train-images.gz: cannot open: File name too long" \
  "$bin" train "${C[@]}" run.dir="$tmp/longdata" train.steps=2 data.train_images="$d/train-images.gz"
expect "sample of a checkpoint path of 5000 characters: the reason at the end" 1 "step-00000004.h5: File name too long" \
  "$bin" sample "$d/checkpoints/step-00000004.h5" --out "$tmp/g.png"
expect "inspect of a path of 5000 characters: the reason at the end" 1 "step-00000004.h5: File name too long" \
  "$bin" inspect "$d/checkpoints/step-00000004.h5"

# 5. gentrain sample --out
c4=$(ck "$tmp/good" 4)
sum=$(md5sum < "$c4")
expect "sample --out onto the checkpoint: refused" 2 "is the checkpoint itself" "$bin" sample "$c4" --out "$c4"
ln -s "$c4" "$tmp/link.h5"
expect "sample --out onto a symlink to the checkpoint: refused" 2 "is the checkpoint itself" "$bin" sample "$c4" --out "$tmp/link.h5"
expect "sample --out onto a file that is not a PNG: refused" 2 "exists and is not a PNG" "$bin" sample "$c4" --out "$tmp/good/config.ini"
if [ "$sum" = "$(md5sum < "$c4")" ] && "$bin" inspect "$c4" > /dev/null; then ok "sample --out: the checkpoint is unchanged and verifies"
else fail "sample --out: the checkpoint changed"; fi
"$bin" sample "$c4" --out "$tmp/grid.png" > /dev/null || fail "sample: a first grid"
png=$(md5sum < "$tmp/grid.png")
rc=0; (ulimit -f 8; exec "$bin" sample "$c4" --out "$tmp/grid.png" --n 256 --seed 3) > "$tmp/out.txt" 2>&1 || rc=$?
if [ "$rc" = 1 ] && grep -q "cannot write $tmp/grid.png: File too large.*the earlier file, if any, is unchanged" "$tmp/out.txt" &&
   [ "$png" = "$(md5sum < "$tmp/grid.png")" ] && ! ls "$tmp"/grid.png.tmp* > /dev/null 2>&1; then
  ok "a PNG write over the file-size limit: exit 1, a message, the old picture intact, no temporary file left"
else fail "PNG under ulimit -f: rc $rc: $(cat "$tmp/out.txt"); left: $(find "$tmp" -maxdepth 1 -name 'grid*')"; fi

# 6. advice that must work when followed
# 6a. the first checkpoint write fails (RLIMIT_FSIZE on the running process):
#     "run the same command again to start over"
d=$tmp/firstfail
S=("${C[@]}" run.dir="$d" train.steps=300 checkpoint.every=300 samples.every=0)
"$bin" train "${S[@]}" > "$tmp/ff.out" 2> "$tmp/ff.err" &
pid=$!
for _ in $(seq 400); do [ -s "$d/metrics.jsonl" ] && break; sleep 0.02; done
prlimit --pid "$pid" --fsize=100000 || fail "prlimit failed"
rc=0; wait "$pid" || rc=$?
if [ "$rc" = 1 ] && grep -q "There is no previous checkpoint; stopping.*run the same command again to start over" "$tmp/ff.err"; then
  ok "a failing first checkpoint: exit 1, the advice says the same command starts over"
else fail "failing first checkpoint: rc $rc: $(cat "$tmp/ff.err")"; fi
expect "a failing first checkpoint: the same command starts over (earlier files moved aside) and finishes" 0 \
  "no checkpoint to resume from: starting over in $d; the earlier run .* moved to $d/previous-" "$bin" train "${S[@]}"
[ -f "$(ck "$d" 300)" ] || fail "first-checkpoint rerun: no final checkpoint"
# 6b. a step fails before the first checkpoint; the rerun (without the failure) starts over
d=$tmp/stepfail
expect "a run that fails before its first checkpoint" 1 "failing on purpose at step 3" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=6 checkpoint.every=100 debug.fail_rank=0 debug.fail_step=3
expect "... the rerun starts over and finishes" 0 "done: 6 steps" "$bin" train "${C[@]}" run.dir="$d" train.steps=6 checkpoint.every=100
# 6c. a finished run whose test-set line is missing (stopped during the final evaluation) evaluates
d=$tmp/notest
cp -r "$tmp/good" "$d"
grep -v '"split": "test"' "$d/metrics.jsonl" > "$d/m" && mv "$d/m" "$d/metrics.jsonl"
expect "a finished run without its test-set line: the rerun evaluates" 0 "no test-set line of step 4: evaluating the test set" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=4
if [ "$(grep -c '"split": "test"' "$d/metrics.jsonl")" = 1 ] && "$py" -c 'import h5py,sys; assert len(h5py.File(sys.argv[1])["test/step"]) == 1' "$d/metrics.h5"; then
  ok "... one test-set line in metrics.jsonl and one row in metrics.h5 /test"
else fail "test line after the rerun: $(grep -c test "$d/metrics.jsonl")"; fi
expect "... and the next rerun has nothing to do" 0 "nothing to do" "$bin" train "${C[@]}" run.dir="$d" train.steps=4
# 6d. another architecture: "use another run.dir, or run.resume=never to start over in this one"
d=$tmp/arch
cp -r "$tmp/good" "$d"
expect "another architecture: refused with advice" 1 "run.resume=never to start over in this one" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=4 "encoder.layer2=dense out=300"
expect "... run.resume=never then starts over" 0 "run.resume=never: starting over in $d" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=4 "encoder.layer2=dense out=300" run.resume=never
# 6e. every checkpoint damaged: "start over with run.resume=never ... or choose another run.dir"
d=$tmp/alldamaged
cp -r "$tmp/good" "$d"
for s in 2 4; do echo "not a checkpoint" > "$(ck "$d" "$s")"; done
expect "all checkpoints damaged: error with advice" 1 "none of its checkpoints can be resumed from.*run.resume=never" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=4
expect "... run.resume=never then starts over" 0 "done: 4 steps" "$bin" train "${C[@]}" run.dir="$d" train.steps=4 run.resume=never
# 6f. a samples.h5 that is not ours: "move it away"
d=$tmp/foreign
mkdir -p "$d"
"$py" -c 'import h5py,sys; h5py.File(sys.argv[1], "w")["images"] = [1.0]' "$d/samples.h5"
expect "a foreign samples.h5: refused with advice" 1 "samples.h5 is not a gentrain-samples file.*move it away" \
  "$bin" train "${C[@]}" run.dir="$d" train.steps=2
mv "$d/samples.h5" "$tmp/foreign-samples.h5"
expect "... moved away, the same command works" 0 "done: 2 steps" "$bin" train "${C[@]}" run.dir="$d" train.steps=2
# 6g. train.steps lowered below the newest checkpoint: a finished run, nothing trained
expect "a checkpoint beyond train.steps: a finished run, not 'done: -N steps'" 0 \
  "the checkpoint's step 4 is past train.steps = 2: nothing to train" "$bin" train "${C[@]}" run.dir="$tmp/good" train.steps=2
if grep -q "done: -" "$tmp/out.txt"; then fail "... it printed a negative step count"; else ok "... no negative step count"; fi

finish faults_rundir
