#!/usr/bin/env bash
# gentrain-dataset files (README "Datasets") from the converter to training:
#  1. tools/make-dataset round trips: IDX -> HDF5 holds the same pixels and
#     labels (and the SHA-256 of the IDX pixels; verify notices a flipped
#     byte), NumPy arrays (channels last) and an image folder (exact pixels;
#     class labels from subdirectories), mixed sizes refused without --size,
#     resized and centre-cropped with it, small images refused without --upscale;
#  2. the reader (tests/tool_dataset) gives h5py's pixels as floats, bit for
#     bit, in any order with repeats, from the training set, the test set and
#     the shard cache, with the labels;
#  3. bad dataset files: one clear error each, before any training and
#     without a run directory (also eval.every with an HDF5 dataset);
#  4. bitwise: the same run from the IDX files and from their HDF5 copy
#     (dcgan at 1 rank, vae at 2 ranks); shuffle = local (and cache = shard)
#     on 1 rank is the global run; a divergence rollback (the loader paused
#     and reseeked) is the IDX run's rollback, bitwise;
#  5. world-size invariance with an HDF5 dataset (SGD, as mpi_invariance.sh);
#  6. bit-exact resume with an HDF5 dataset at 1 and 2 ranks (global, and
#     local with the shard cache);
#  7. each rank reads exactly its share: the rows it reads (debug.dump_reads)
#     are, step by step, its slice of the 1-rank run's, disjoint across ranks
#     within an epoch, none read ahead beyond the last step; with the shard
#     cache each rank reads its contiguous shard once and nothing else;
#  8. a synthetic 3x64x64 dataset trains with configs/dcgan64.ini and
#     configs/vae64.ini at 1 and 2 ranks (RGB sample grids).
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/train-images-idx3-ubyte.gz" ] || { echo "FAIL: Fashion-MNIST missing: apt-get install -y dataset-fashion-mnist"; exit 1; }
"$py" -c 'import h5py, numpy, PIL' || { echo "FAIL: apt-get install -y python3-h5py python3-numpy python3-pil"; exit 1; }
mk="$src/tools/make-dataset"
tool="$build/tool_dataset"
cmp_py="$src/tests/mpi_params.py"

# ---- 1. the converter -------------------------------------------------------
"$mk" idx "$fm/train-images-idx3-ubyte.gz" "$fm/train-labels-idx1-ubyte.gz" \
  --test "$fm/t10k-images-idx3-ubyte.gz" "$fm/t10k-labels-idx1-ubyte.gz" -o "$tmp/fm.h5" > "$tmp/mk.log" 2>&1 ||
  { echo "FAIL: make-dataset idx: $(cat "$tmp/mk.log")"; exit 1; }
if grep -q "images: 60000/60000 (100%)" "$tmp/mk.log" && grep -qE "sha256 /images: [0-9a-f]{64}" "$tmp/mk.log"; then
  ok "make-dataset idx prints progress and the SHA-256"
else fail "make-dataset idx output: $(cat "$tmp/mk.log")"; fi
if "$py" - "$tmp/fm.h5" "$fm" <<'PY'
import gzip, hashlib, sys
import h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
def idx(name, off):
    return np.frombuffer(gzip.open(f"{sys.argv[2]}/{name}").read(), np.uint8, offset=off)
tr = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
te = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
assert f.attrs["format"] == "gentrain-dataset" and f.attrs["format_version"] == 1
assert (f.attrs["channels"], f.attrs["height"], f.attrs["width"], f.attrs["n_classes"]) == (1, 28, 28, 10)
assert f["images"].dtype == np.uint8 and f["images"].shape == (60000, 1, 28, 28) and f["images"].chunks[1:] == (1, 28, 28)
assert np.array_equal(f["images"][:], tr) and np.array_equal(f["test/images"][:], te)
assert np.array_equal(f["labels"][:], idx("train-labels-idx1-ubyte.gz", 8))
assert np.array_equal(f["test/labels"][:], idx("t10k-labels-idx1-ubyte.gz", 8))
assert f["images"].attrs["sha256"] == hashlib.sha256(tr.tobytes()).hexdigest()
assert f["test/images"].attrs["sha256"] == hashlib.sha256(te.tobytes()).hexdigest()
PY
then ok "IDX -> HDF5: the same pixels and labels, attributes, SHA-256 of the IDX pixels"
else fail "IDX -> HDF5 round trip"; fi
if "$mk" verify "$tmp/fm.h5" > "$tmp/v.log" 2>&1 && [ "$(grep -c ' ok$' "$tmp/v.log")" = 2 ]; then ok "make-dataset verify: checksums ok"
else fail "verify: $(cat "$tmp/v.log")"; fi
if "$bin" inspect "$tmp/fm.h5" > "$tmp/i.log" 2>&1 && grep -q "a gentrain dataset" "$tmp/i.log" &&
   grep -qE "^  /images +uint8 +\[60000,1,28,28\] +read ok .*sha256=" "$tmp/i.log"; then
  ok "gentrain inspect names a dataset file and shows its checksums"
else fail "inspect: $(cat "$tmp/i.log")"; fi
cp "$tmp/fm.h5" "$tmp/flip.h5"
"$py" - "$tmp/flip.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    off = f["images"].id.get_chunk_info(3).byte_offset + 1000
with open(sys.argv[1], "r+b") as g:
    g.seek(off); b = g.read(1); g.seek(off); g.write(bytes([b[0] ^ 0x10]))
PY
if ! "$mk" verify "$tmp/flip.h5" > "$tmp/v.log" 2>&1 && grep -q "/images: .*MISMATCH" "$tmp/v.log"; then
  ok "make-dataset verify notices a flipped pixel"
else fail "verify of a flipped file: $(cat "$tmp/v.log")"; fi

# NumPy, channels last, with a test fraction
"$py" - "$tmp" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(1)
np.save(f"{sys.argv[1]}/x.npy", rng.integers(0, 256, (50, 9, 7, 3), dtype=np.uint8))
np.save(f"{sys.argv[1]}/y.npy", rng.integers(0, 4, 50))
np.save(f"{sys.argv[1]}/bad.npy", rng.integers(0, 256, (50, 9, 7, 2), dtype=np.uint8))
PY
if "$mk" numpy "$tmp/x.npy" --labels "$tmp/y.npy" --test-fraction 0.2 -o "$tmp/np.h5" > "$tmp/np.log" 2>&1 &&
   "$py" - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
x, y = np.load(f"{d}/x.npy").transpose(0, 3, 1, 2), np.load(f"{d}/y.npy")
f = h5py.File(f"{d}/np.h5", "r")
assert f["images"].shape == (40, 3, 9, 7) and f["test/images"].shape == (10, 3, 9, 7)
got = np.concatenate([f["images"][:], f["test/images"][:]])
lab = np.concatenate([f["labels"][:], f["test/labels"][:]])
# the split keeps each set in file order: match rows to the source
rows = [int(np.flatnonzero((x == g).all(axis=(1, 2, 3)))[0]) for g in got]
assert sorted(rows) == list(range(50)) and np.array_equal(lab, y[rows])
PY
then ok "NumPy [N,H,W,C] -> HDF5 [N,C,H,W] with a test split: the same pixels and labels"
else fail "NumPy round trip: $(cat "$tmp/np.log")"; fi
if ! "$mk" numpy "$tmp/bad.npy" --test-fraction 0.2 -o "$tmp/bad.h5" > "$tmp/e.log" 2>&1 &&
   grep -q "make-dataset: error: .*neither first nor last.*1 (grey) or 3 (RGB)" "$tmp/e.log" && [ ! -e "$tmp/bad.h5" ]; then
  ok "NumPy with 2 channels refused: $(cat "$tmp/e.log")"
else fail "2 channels: $(cat "$tmp/e.log")"; fi

# a folder of PNGs: classes from subdirectories, exact pixels; mixed sizes
"$py" - "$tmp" <<'PY'
import os, sys, numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(2)
for c in ("cat", "dog"):
    os.makedirs(f"{d}/pics/{c}")
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(f"{d}/pics/{c}/{i}.png")
os.makedirs(f"{d}/mixed")
Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(f"{d}/mixed/a.png")
Image.fromarray(rng.integers(0, 256, (30, 40), dtype=np.uint8)).save(f"{d}/mixed/b.png")
Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(f"{d}/mixed/c.jpg")
PY
if "$mk" images "$tmp/pics" --labels subdirs --test-fraction 0.34 --order keep -o "$tmp/pics.h5" > "$tmp/im.log" 2>&1 &&
   "$py" - "$tmp" <<'PY'
import glob, sys, h5py, numpy as np
from PIL import Image
d = sys.argv[1]
f = h5py.File(f"{d}/pics.h5", "r")
src = {p: np.asarray(Image.open(p)).transpose(2, 0, 1) for p in sorted(glob.glob(f"{d}/pics/*/*.png"))}
assert f["images"].shape == (4, 3, 12, 16) and f["test/images"].shape == (2, 3, 12, 16), f["images"].shape
assert f.attrs["class_names"] == "cat,dog" and f.attrs["n_classes"] == 2
for img, lab in zip(np.concatenate([f["images"][:], f["test/images"][:]]), np.concatenate([f["labels"][:], f["test/labels"][:]])):
    match = [p for p, a in src.items() if np.array_equal(a, img)]
    assert len(match) == 1 and ("/cat/" in match[0]) == (lab == 0), (match, lab)
PY
then ok "image folder -> HDF5: exact pixels, labels from class subdirectories"
else fail "image folder round trip: $(cat "$tmp/im.log")"; fi
if ! "$mk" images "$tmp/mixed" --test-fraction 0.34 -o "$tmp/m.h5" > "$tmp/e.log" 2>&1 &&
   grep -q "make-dataset: error: the images have 3 different sizes.*give --size S" "$tmp/e.log"; then
  ok "mixed sizes without --size refused: $(grep -o "error: .*" "$tmp/e.log" | cut -c1-150)..."
else fail "mixed sizes: $(cat "$tmp/e.log")"; fi
if ! "$mk" images "$tmp/mixed" --size 16 --test-fraction 0.34 -o "$tmp/m.h5" > "$tmp/e.log" 2>&1 &&
   grep -q "make-dataset: error: 1 images are smaller than 16 pixels on a side.*--upscale" "$tmp/e.log"; then
  ok "images smaller than --size refused without --upscale"
else fail "small images: $(cat "$tmp/e.log")"; fi
if "$mk" images "$tmp/mixed" --size 10 --test-fraction 0.34 -o "$tmp/m.h5" > "$tmp/e.log" 2>&1 &&
   "$py" -c 'import sys, h5py; f = h5py.File(sys.argv[1]); assert f["images"].shape == (2, 3, 10, 10) and f["test/images"].shape == (1, 3, 10, 10)' "$tmp/m.h5"; then
  ok "mixed sizes and modes with --size 10: resized, centre-cropped, RGB"
else fail "--size: $(cat "$tmp/e.log")"; fi
"$py" - "$tmp" <<'PY'
import gzip, struct, sys, numpy as np
d = sys.argv[1]
for name, shape in (("a", (5, 28, 28)), ("b", (5, 32, 32))):
    with gzip.open(f"{d}/{name}.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, *shape) + bytes(np.prod(shape)))
PY
if ! "$mk" idx "$tmp/a.gz" --test "$tmp/b.gz" -o "$tmp/ab.h5" > "$tmp/e.log" 2>&1 &&
   grep -q "make-dataset: error: the test images .* are 32x32 but the training images .* are 28x28" "$tmp/e.log"; then
  ok "IDX train and test of different sizes refused"
else fail "IDX sizes: $(cat "$tmp/e.log")"; fi

# ---- 2. the reader: h5py's pixels, bit for bit --------------------------------
reads_match() {  # FILE MODE [FIRST COUNT] -- INDEX...: tool_dataset's floats and labels are h5py's
  local file=$1 mode=$2; shift 2
  local pre=()
  while [ "$1" != -- ]; do pre+=("$1"); shift; done
  shift
  "$tool" "$file" "$mode" "${pre[@]}" "$@" > "$tmp/batch.bin" 2> "$tmp/batch.err" || { cat "$tmp/batch.err"; return 1; }
  "$py" - "$file" "$mode" "$tmp/batch.bin" "$@" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
test = sys.argv[2] == "test"
idx = [int(a) for a in sys.argv[4:]]
im, lab = (f["test/images"], f["test/labels"]) if test else (f["images"], f["labels"])
want = np.stack([im[i] for i in idx]).astype(np.float32) / np.float32(127.5) - np.float32(1)
raw = open(sys.argv[3], "rb").read()
got = np.frombuffer(raw[:want.nbytes], np.float32).reshape(want.shape)
labels = np.frombuffer(raw[want.nbytes:], np.int32)
assert got.tobytes() == want.tobytes(), "pixels differ"
assert list(labels) == [int(lab[i]) for i in idx], (list(labels), [int(lab[i]) for i in idx])
PY
}
if reads_match "$tmp/fm.h5" train -- 59999 5 17 5 0 30000 29999 1336 1337 && grep -q "rows_read=9 " "$tmp/batch.err"; then
  ok "training rows in any order, with repeats and across chunk edges: h5py's pixels as floats, bit for bit, and labels"
else fail "reading training rows: $(cat "$tmp/batch.err")"; fi
if reads_match "$tmp/fm.h5" test -- 9999 0 4242; then ok "test rows read likewise"; else fail "reading test rows"; fi
if reads_match "$tmp/fm.h5" cache 1000 2000 -- 2999 1000 1500 && grep -q "rows_read=2000 " "$tmp/batch.err"; then
  ok "the shard cache [1000, 3000): read once (2000 rows), then the same floats"
else fail "reading through the cache: $(cat "$tmp/batch.err")"; fi
if reads_match "$tmp/np.h5" train -- 3 39 0 && reads_match "$tmp/pics.h5" test -- 1 0; then ok "RGB rows read likewise"
else fail "reading RGB rows"; fi

# ---- 3. bad dataset files: one clear error before training ---------------------
"$py" - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(3)
def make(name, images=(40, 1, 28, 28), test=(10, 1, 28, 28), labels=True, test_labels=True, fmt="gentrain-dataset",
         dtype=np.uint8, attrs=None, label_values=None, split=None, group=True):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        if fmt is not None:
            f.attrs["format"] = fmt
        f.attrs["format_version"] = 1
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        f["images"] = rng.integers(0, 256, images).astype(dtype)
        if labels:
            f["labels"] = label_values if label_values is not None else rng.integers(0, 10, images[0])
        if split:
            f.attrs["test_split"] = split
        elif group:
            f["test/images"] = rng.integers(0, 256, test).astype(np.uint8)
            if test_labels and labels:
                f["test/labels"] = rng.integers(0, 10, test[0])
make("good")
make("wrongformat", fmt="gentrain-checkpoint")
make("noformat", fmt=None)
make("shape", test=(10, 1, 28, 27))
make("labels_range", attrs={"n_classes": 10}, label_values=np.r_[np.zeros(39, int), 12])
make("labels_negative", label_values=np.r_[np.zeros(39, int), -1])
make("channels", images=(40, 2, 28, 28), test=(10, 2, 28, 28))
make("floats", dtype=np.float32)
make("notest", group=False)
make("testnolabels", test_labels=False)
make("labelcount", label_values=np.zeros(30, int))
make("split", split=10)
make("badsplit", split=40)
make("sizeattr", attrs={"height": 32})
PY
cp "$tmp/fm.h5" "$tmp/truncated.h5"
truncate -s 30000000 "$tmp/truncated.h5"
bad_dataset() {  # NAME PATTERN [overrides...]: the dataset NAME fails with PATTERN, before training
  local name=$1 pattern=$2; shift 2
  local path=$tmp/$name.h5
  [ -f "$path" ] || path=$name
  if "$bin" train "$src/configs/dcgan.ini" data.kind=hdf5 data.path="$path" run.dir="$tmp/run-$name" train.steps=2 "$@" \
      > "$tmp/bad.out" 2> "$tmp/bad.err"; then fail "$name: exit 0"; return; fi
  if [ "$(grep -c . "$tmp/bad.err")" = 1 ] && grep -qE "^gentrain: error: .*$pattern" "$tmp/bad.err" &&
     ! grep -q "^step" "$tmp/bad.out" && [ ! -e "$tmp/run-$name" ]; then
    ok "$name: $(cut -c1-160 "$tmp/bad.err")..."
  else fail "$name: expected one error line matching '$pattern' and no run dir; got: $(cat "$tmp/bad.err" "$tmp/bad.out" | head -5)"; fi
}
bad_dataset wrongformat "not a gentrain dataset: its format attribute is 'gentrain-checkpoint'"
bad_dataset noformat "not a gentrain dataset: the file has no 'format' attribute"
bad_dataset shape "the test images /test/images are 1x28x27 but the training images /images are 1x28x28"
bad_dataset truncated "truncated"
bad_dataset labels_range "'/labels'\[39\] = 12 is outside \[0, 10\) \(the file's n_classes attribute\)"
bad_dataset labels_negative "'/labels'\[39\] = -1: labels are class numbers"
bad_dataset channels "'/images' has 2 channels .* gentrain trains on 1 \(grey\) or 3 \(RGB\) channels"
bad_dataset floats "'/images' holds float32 values; a gentrain dataset holds uint8 pixels"
bad_dataset notest "no test set: the file needs a /test group"
bad_dataset testnolabels "/images has labels but /test/images does not"
bad_dataset labelcount "'/labels' has shape \[30\] but there are 40 images"
bad_dataset badsplit "test_split = 40 must leave both sets examples"
bad_dataset sizeattr "the attribute height = 32 does not match /images"
bad_dataset "$tmp/nowhere.h5" "cannot open for reading"
bad_dataset "$src/configs/dcgan.ini" "is not an HDF5 file"
bad_dataset good "\[data\] limit" data.limit=41
bad_dataset good "cache = shard needs shuffle = local" data.cache=shard
bad_dataset good "\[eval\] every = 10 needs the data in memory, but \[data\] kind = hdf5 .* is read on demand" eval.every=10
if "$tool" "$tmp/split.h5" check 2> "$tmp/split.err" && grep -q "n=30 test=10 " "$tmp/split.err"; then
  ok "test_split: the last 10 rows are the test set"
else fail "test_split: $(cat "$tmp/split.err")"; fi

# ---- 4. bitwise: IDX files and their HDF5 copy --------------------------------
h5=(data.kind=hdf5 data.path="$tmp/fm.h5")
short=(train.steps=6 train.epochs=0 log.every=3 eval.n=64 samples.every=0 checkpoint.every=0)
run() {  # NAME RANKS CONFIG [overrides...]: parameters dumped to $tmp/NAME.rank0
  local name=$1 np=$2 cfg=$3; shift 3
  if ! timeout -k 5 600 mpirun -np "$np" "$bin" train "$src/configs/$cfg.ini" run.dir="$tmp/$name" \
      debug.dump_params="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1; then
    fail "$name: the run failed: $(tail -5 "$tmp/$name.log")"
    return 1
  fi
}
same_params() {  # A B WHAT
  if cmp -s "$tmp/$1.rank0" "$tmp/$2.rank0" && grep -q "^test set" "$tmp/$2.log" &&
     [ "$(grep '^test set' "$tmp/$1.log")" = "$(grep '^test set' "$tmp/$2.log")" ]; then ok "$3"
  else fail "$3: the parameters or test losses differ"; fi
}
run idx1 1 dcgan "${short[@]}" train.batch_size=16 && run h5_1 1 dcgan "${short[@]}" train.batch_size=16 "${h5[@]}" &&
  same_params idx1 h5_1 "dcgan, 1 rank: IDX files and their HDF5 copy train bitwise the same parameters (and test losses)"
run idx2 2 vae "${short[@]}" train.batch_size=8 && run h5_2 2 vae "${short[@]}" train.batch_size=8 "${h5[@]}" data.readahead=3 &&
  same_params idx2 h5_2 "vae, 2 ranks: IDX and HDF5 (read ahead 3) bitwise the same"
run h5_1r0 1 dcgan "${short[@]}" train.batch_size=16 "${h5[@]}" data.readahead=0 &&
  same_params h5_1 h5_1r0 "readahead 0 (reads on the training thread) = readahead 2"
run local1 1 dcgan "${short[@]}" train.batch_size=16 "${h5[@]}" data.shuffle=local data.cache=shard &&
  same_params h5_1 local1 "shuffle = local with cache = shard on 1 rank = the global run, bitwise"
# a divergence rollback (rank 0 reads a checkpoint with the loader paused, then the loader follows the
# rewound sampler): the HDF5 run, read ahead, is bitwise the IDX run with the same rollback
rb=(train.on_divergence=rollback checkpoint.every=2 debug.nan_rank=0 debug.nan_step=5)
run idx_rb 1 dcgan "${short[@]}" train.batch_size=16 "${rb[@]}" &&
  run h5_rb 1 dcgan "${short[@]}" train.batch_size=16 "${h5[@]}" data.readahead=3 "${rb[@]}" &&
  if grep -q "rollback 1 of at most 3: back to step 4" "$tmp/h5_rb.log"; then
    same_params idx_rb h5_rb "a rollback with an HDF5 dataset read ahead: bitwise the IDX run's"
  else fail "HDF5 rollback: $(grep -E 'error|rollback|diverged' "$tmp/h5_rb.log" | head -5)"; fi
if grep -q "same run as shuffle = global" "$tmp/local1.log" && grep -q "cache = shard: rank 0 read its shard of 60000 examples" "$tmp/local1.log"; then
  ok "the log says what local mode and the cache do"
else fail "local mode log: $(grep '^data' "$tmp/local1.log")"; fi

# ---- 5. world-size invariance with an HDF5 dataset (SGD) -----------------------
inv=(train.steps=20 train.epochs=0 data.limit=1200 eval.at_end=false log.every=0 dist.check_every=10 checkpoint.every=0
     samples.every=0 dist.sync_bn=true optim.kind=sgd optim.beta1=0 "${h5[@]}")
rel_diff() {  # A B: sets d
  if "$py" "$cmp_py" diff "$tmp/$1.rank0" "$tmp/$2.rank0" > "$tmp/diff.txt" 2>&1; then d=$(tail -n 1 "$tmp/diff.txt")
  else fail "$1 vs $2: $(cat "$tmp/diff.txt")"; return 1; fi
}
le() { "$py" -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }
for m in vae:1e-4 dcgan:2e-3; do
  cfg=${m%%:*} lr=${m#*:}
  run "${cfg}i1" 1 "$cfg" "${inv[@]}" train.batch_size=12 optim.lr="$lr" &&
  run "${cfg}i2" 2 "$cfg" "${inv[@]}" train.batch_size=6 optim.lr="$lr" &&
  rel_diff "${cfg}i1" "${cfg}i2" && {
    if le "$d" 1e-5; then ok "$cfg from HDF5: 2 ranks x 6 = 1 rank x 12 (rel. diff $d)"
    else fail "$cfg from HDF5: 2 ranks x 6 vs 1 x 12: rel. diff $d > 1e-5"; fi
  }
done

# ---- 6. bit-exact resume with an HDF5 dataset ----------------------------------
ck() { printf '%s/checkpoints/step-%08d.h5' "$1" "$2"; }
same_state() { for g in /params /optim /data /rng; do h5diff "$1" "$2" "$g" > /dev/null || return 1; done; }
R=("$src/configs/dcgan.ini" train.batch_size=8 train.epochs=0 data.limit=512 log.every=2 eval.n=32 checkpoint.every=4
   checkpoint.keep=0 samples.every=4 samples.n=16 "${h5[@]}")
for variant in "1 global" "2 global" "2 local"; do
  np=${variant% *} mode=${variant#* }
  extra=(); [ "$mode" = local ] && extra=(data.shuffle=local data.cache=shard)
  a=$tmp/res-a-$np-$mode b=$tmp/res-b-$np-$mode
  if mpirun -np "$np" "$bin" train "${R[@]}" "${extra[@]}" run.dir="$a" train.steps=8 > "$a.log" 2>&1 &&
     mpirun -np "$np" "$bin" train "${R[@]}" "${extra[@]}" run.dir="$b" train.steps=4 > "$b.log" 2>&1 &&
     mpirun -np "$np" "$bin" train "${R[@]}" "${extra[@]}" run.dir="$b" train.steps=8 > "$b.2.log" 2>&1 &&
     grep -q "resuming from" "$b.2.log" && same_state "$(ck "$a" 8)" "$(ck "$b" 8)"; then
    ok "$np rank(s), shuffle $mode${extra[*]:+ with the shard cache}: 4 + resume + 4 steps == 8 steps, bitwise"
  else fail "$np rank(s) $mode: resume: $(tail -3 "$b.2.log")"; fi
done

# ---- 7. each rank reads its share -----------------------------------------------
cnt=(train.steps=150 train.epochs=0 data.limit=1200 eval.at_end=false log.every=50 checkpoint.every=0 samples.every=0 "${h5[@]}")
if run reads1 1 mlpvae "${cnt[@]}" train.batch_size=12 debug.dump_reads="$tmp/rd1" &&
   run reads2 2 mlpvae "${cnt[@]}" train.batch_size=6 debug.dump_reads="$tmp/rd2" &&
   "$py" - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
one = np.fromfile(f"{d}/rd1.rank0", np.int64).reshape(150, 12)
r = [np.fromfile(f"{d}/rd2.rank{k}", np.int64).reshape(150, 6) for k in (0, 1)]
for k in (0, 1):   # step by step, rank k reads the 1-rank batch's positions k, k+2, ...
    assert np.array_equal(r[k], one[:, k::2]), f"rank {k}"
epoch0 = [x[:100].ravel() for x in r]   # 1200 / 12 = 100 steps per epoch
assert all(len(set(e)) == 600 for e in epoch0), "a rank read a row twice in an epoch"
assert len(set(epoch0[0]) | set(epoch0[1])) == 1200, "the ranks' epoch reads overlap or miss rows"
PY
then ok "global shuffle: each rank reads exactly its slice of every global batch (150 steps x 6 rows, 600 distinct per epoch, disjoint), nothing more"
else fail "global shuffle read sets"; fi
if grep -q "examples read per rank: 900 900 (this run's batches: 900 per rank)" "$tmp/reads2.log"; then
  ok "the log counts the rows each rank read: $(grep -o 'examples read per rank: [0-9 ]*' "$tmp/reads2.log")"
else fail "read counts: $(grep '^data: examples' "$tmp/reads2.log")"; fi
if run reads2l 2 mlpvae "${cnt[@]}" train.batch_size=6 data.shuffle=local data.cache=shard debug.dump_reads="$tmp/rd2l" &&
   "$py" - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
for k in (0, 1):
    got = np.fromfile(f"{d}/rd2l.rank{k}", np.int64)
    assert np.array_equal(got, np.arange(600 * k, 600 * (k + 1))), f"rank {k} read {got[:5]}... ({len(got)} rows)"
PY
then ok "local shuffle with the shard cache: rank r read exactly its shard [600r, 600(r+1)), once, and nothing else"
else fail "local read sets"; fi
if grep -q "this gives up world-size invariance" "$tmp/reads2l.log"; then ok "local mode on 2 ranks says in the log what it gives up"
else fail "local mode log: $(grep '^data' "$tmp/reads2l.log")"; fi

# ---- 8. 64x64 RGB models on a synthetic dataset -----------------------------------
"$mk" synthetic --n 600 --n-test 100 -o "$tmp/syn64.h5" > "$tmp/syn.log" 2>&1 || fail "make-dataset synthetic: $(cat "$tmp/syn.log")"
for cfg in dcgan64 vae64; do
  for np in 1 2; do
    if run "$cfg-$np" "$np" "$cfg" data.path="$tmp/syn64.h5" train.steps=4 train.batch_size=8 log.every=2 eval.n=32 \
        samples.every=4 samples.n=16 checkpoint.every=0 &&
       "$py" - "$tmp/$cfg-$np" <<'PY'
import json, math, struct, sys, h5py
d = sys.argv[1]
rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
assert len(rows) == 3 and all(math.isfinite(v) for r in rows for k, v in r.items() if isinstance(v, float)), rows
assert h5py.File(f"{d}/samples.h5")["step-00000004"].shape == (16, 3, 64, 64)
png = open(f"{d}/samples.png", "rb").read()
w, h, depth, ctype = struct.unpack(">IIBB", png[16:26])
assert (w, h, depth, ctype) == (4 * 64 + 5 * 2, 4 * 64 + 5 * 2, 8, 2), (w, h, depth, ctype)   # RGB
PY
    then ok "$cfg on synthetic 3x64x64 at $np rank(s): trains, finite losses, an RGB sample grid"
    else fail "$cfg at $np rank(s)"; fi
  done
done

finish dataset
