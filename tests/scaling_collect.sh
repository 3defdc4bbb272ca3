#!/usr/bin/env bash
# tools/scaling-collect on real gentrain output, without Slurm: the points of
# a tiny study (mlpvae, strong scaling at global batch 200 and weak scaling at
# 100 per rank, over 1 and 2 ranks: 3 distinct runs) are trained with mpirun
# and laid out as tools/scaling-submit and jobs/scaling.sbatch lay them out
# (STUDY/plan.csv, STUDY/runs/TAG/point.json, STUDY/runs/TAG/metrics.jsonl).
#  1. the collector writes scaling.csv with exactly its documented columns:
#     img_per_s equal to the time-weighted mean of the logged images/s after
#     the warm-up third (recomputed here from metrics.jsonl), comm_wait_frac
#     (gentrain's key) filled in for 2 ranks and empty for 1, the step-time
#     split, speedup and efficiency; and a valid scaling.png;
#  2. metrics without the keys gentrain writes (comm_wait_frac on 2 ranks,
#     img_per_s) make it fail, naming the file, the line and the key;
#  3. a point that did not finish is listed as failed, with a non-zero exit.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
"$py" -c 'import matplotlib' 2>/dev/null ||
  { echo "FAIL: matplotlib missing for $py: apt-get install -y python3-matplotlib"; exit 1; }
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { echo "FAIL: Fashion-MNIST missing: apt-get install -y dataset-fashion-mnist"; exit 1; }
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
collect=$src/tools/scaling-collect
cfg=$src/configs/mlpvae.ini
steps=60 log_every=10

# point STUDY MODE RANKS BATCH_PER_RANK JOB_ID: run (or reuse) the point and add it to the plan
point() {
  local study=$1 mode=$2 ranks=$3 b=$4 job=$5
  local tag="N1-n$ranks-b$b"
  local dir="$study/runs/$tag"
  if [ ! -e "$dir/point.json" ]; then
    mkdir -p "$dir"
    cat > "$dir/point.json" <<EOF
{"tag": "$tag", "job_id": "$job", "nodes": 1, "ranks": $ranks,
 "ranks_per_node": $ranks, "threads": 1,
 "batch_per_rank": $b, "global_batch": $(( b * ranks )), "steps": $steps, "log_every": $log_every,
 "launcher": "mpirun", "nodelist": "$(hostname -s)", "config": "$cfg"}
EOF
    timeout -k 5 300 mpirun -np "$ranks" "$bin" train "$cfg" run.dir="$dir" run.threads=1 train.batch_size="$b" \
        train.steps="$steps" train.epochs=0 log.every="$log_every" eval.at_end=false data.limit=6000 \
        checkpoint.every=0 samples.every=0 > "$study/$tag-$job.out" 2>&1 ||
      { fail "$tag: the run failed: $(tail -n 5 "$study/$tag-$job.out")"; return 1; }
  fi
  echo "$mode,1,$ranks,$ranks,$b,$tag,$job" >> "$study/plan.csv"
}
study=$tmp/study
mkdir -p "$study"
echo "mode,nodes,ranks_per_node,ranks,batch_per_rank,tag,job_id" > "$study/plan.csv"
point "$study" strong 1 200 11
point "$study" strong 2 100 12
point "$study" weak 1 100 13
point "$study" weak 2 100 12     # the same point as strong 2 x 100: run once, listed twice

# 1. the CSV and the plot
if "$collect" "$study" > "$tmp/collect.log" 2>&1; then ok "scaling-collect: $(tr '\n' ' ' < "$tmp/collect.log")"
else fail "scaling-collect failed: $(cat "$tmp/collect.log")"; fi
if [ -f "$study/scaling.csv" ] && "$py" - "$study" "$steps" <<'PY'
import csv, json, math, os, sys
study, steps = sys.argv[1], int(sys.argv[2])
cols = ["mode", "nodes", "ranks_per_node", "ranks", "threads", "batch_per_rank", "global_batch", "timed_steps",
        "img_per_s", "img_per_s_per_rank", "step_ms", "comm_wait_frac", "comm_ms", "compute_ms", "speedup",
        "efficiency", "job_id", "status"]
with open(os.path.join(study, "scaling.csv")) as f:
    reader = csv.DictReader(f)
    assert reader.fieldnames == cols, reader.fieldnames
    rows = list(reader)
for r in rows:
    print(f"  {r['mode']:6} ranks {r['ranks']} x {r['batch_per_rank']:>3}: {float(r['img_per_s']):8.0f} img/s, "
          f"{float(r['step_ms']):6.2f} ms/step, comm_wait_frac {r['comm_wait_frac'] or '-':>6}, "
          f"speedup {r['speedup']}, efficiency {r['efficiency']}")
assert [(r["mode"], r["ranks"]) for r in rows] == [("strong", "1"), ("strong", "2"), ("weak", "1"), ("weak", "2")], rows
by = {(r["mode"], int(r["ranks"])): r for r in rows}

def expected(tag):
    """time-weighted images/s and mean comm_wait_frac after the first third of the intervals"""
    lines = [json.loads(l) for l in open(os.path.join(study, "runs", tag, "metrics.jsonl"))]
    assert all("split" not in l for l in lines), "eval.at_end=false: no test line expected"
    assert [l["step"] for l in lines] == list(range(10, steps + 1, 10)), [l["step"] for l in lines]
    timed = lines[len(lines) // 3:]
    ips = sum(10 for _ in timed) / sum(10 / l["img_per_s"] for l in timed)
    comm = [l["comm_wait_frac"] for l in timed if "comm_wait_frac" in l]
    return ips, (sum(comm) / len(comm) if comm else None), len(timed) * 10

for (mode, ranks), r in by.items():
    b, g = int(r["batch_per_rank"]), int(r["global_batch"])
    assert r["status"] == "ok" and r["nodes"] == "1" and r["ranks_per_node"] == str(ranks) and r["threads"] == "1", r
    assert g == b * ranks and g == (200 if mode == "strong" else 100 * ranks), r
    ips, comm, timed = expected(f"N1-n{ranks}-b{b}")
    assert int(r["timed_steps"]) == timed == 40, (r, timed)
    assert float(r["img_per_s"]) > 0 and abs(float(r["img_per_s"]) - ips) <= 0.05 + 1e-9 * ips, (r, ips)
    # the CSV rounds images/s to 0.1, step times to 0.001 ms and comm_wait_frac to 1e-4
    assert math.isclose(float(r["img_per_s_per_rank"]), float(r["img_per_s"]) / ranks, abs_tol=0.08), r
    assert math.isclose(float(r["step_ms"]), 1000 * g / float(r["img_per_s"]), rel_tol=1e-3), r
    if ranks == 1:
        # gentrain logs no comm_wait_frac on one rank: nothing to split
        assert comm is None and r["comm_wait_frac"] == r["comm_ms"] == r["compute_ms"] == "", r
    else:
        assert comm is not None and r["comm_wait_frac"] != "", r
        f = float(r["comm_wait_frac"])
        assert 0 < f < 1 and abs(f - comm) <= 6e-5, (r, comm)
        assert math.isclose(float(r["comm_ms"]) + float(r["compute_ms"]), float(r["step_ms"]), abs_tol=2e-3), r
        assert math.isclose(float(r["comm_ms"]), f * float(r["step_ms"]), abs_tol=1e-3 + 6e-5 * float(r["step_ms"])), r
for mode in ("strong", "weak"):
    one, two = by[(mode, 1)], by[(mode, 2)]
    speedup = float(two["img_per_s"]) / float(one["img_per_s"])
    assert float(one["speedup"]) == float(one["efficiency"]) == 1.0, one
    assert abs(float(two["speedup"]) - speedup) <= 2e-3, (two, speedup)
    eff = speedup / 2 if mode == "strong" else float(two["img_per_s_per_rank"]) / float(one["img_per_s_per_rank"])
    assert float(two["efficiency"]) > 0 and abs(float(two["efficiency"]) - eff) <= 2e-3, (two, eff)
# the shared point: one run, the same numbers in both modes, the same job id
for k in ("img_per_s", "comm_wait_frac", "step_ms", "job_id"):
    assert by[("strong", 2)][k] == by[("weak", 2)][k], k
PY
then ok "scaling.csv: the documented columns; img_per_s and comm_wait_frac as in metrics.jsonl (comm_wait_frac for 2 ranks, empty for 1), step-time split, speedup and efficiency"
else fail "scaling.csv missing or wrong"; fi
if "$py" - "$study/scaling.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
o, chunks, idat = 8, [], b""
while o < len(data):
    n, kind = struct.unpack(">I4s", data[o:o + 8])
    body = data[o + 8:o + 8 + n]
    assert len(body) == n and zlib.crc32(kind + body) == struct.unpack(">I", data[o + 8 + n:o + 12 + n])[0], kind
    chunks.append(kind)
    idat += body if kind == b"IDAT" else b""
    o += 12 + n
w, h = struct.unpack(">II", data[16:24])
assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks, chunks
assert (w, h) == (1500, 450), (w, h)        # figsize 15 x 4.5 in at 100 dpi
assert len(zlib.decompress(idat)) > h * w, "IDAT too short"
print(f"  scaling.png {w}x{h}, {len(data)} bytes, {len(chunks)} chunks")
PY
then ok "scaling.png is a valid PNG (signature, chunk CRCs, IHDR..IEND, image data)"
else fail "scaling.png missing or not a valid PNG"; fi

# 2. metrics without gentrain's keys: a clear error, not an empty column
# variant NAME PYTHON-EXPRESSION-ON-r: a copy of the study whose 2-rank point's metrics lines are edited
variant() {
  cp -r "$study" "$tmp/$1"
  rm -f "$tmp/$1/scaling.csv" "$tmp/$1/scaling.png"
  "$py" - "$tmp/$1/runs/N1-n2-b100/metrics.jsonl" "$2" <<'PY'
import json, sys
path, edit = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path)]
for r in rows:
    exec(edit)
open(path, "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
}
expect_error() {  # NAME STUDY PATTERN: scaling-collect exits non-zero with a message matching PATTERN
  if "$collect" "$2" > "$tmp/err.log" 2>&1; then fail "$1: exit 0: $(cat "$tmp/err.log")"
  elif grep -qE "$3" "$tmp/err.log"; then ok "$1: $(grep -E "$3" "$tmp/err.log" | head -n 1 | cut -c1-200)"
  else fail "$1: unexpected message: $(cat "$tmp/err.log")"; fi
}
variant nocomm 'r.pop("comm_wait_frac", None)'
expect_error "2-rank metrics without comm_wait_frac" "$tmp/nocomm" \
  "scaling-collect: .*/runs/N1-n2-b100/metrics.jsonl:1: no comm_wait_frac in this line of a 2-rank run"
variant renamed 'r["comm_frac"] = r.pop("comm_wait_frac")'
expect_error "a renamed key is not guessed" "$tmp/renamed" "metrics.jsonl:1: no comm_wait_frac .*keys: .*comm_frac"
variant noips 'r.pop("img_per_s") if r["step"] == 30 else None'
expect_error "metrics without img_per_s" "$tmp/noips" "metrics.jsonl:3: no img_per_s in this line"

# 3. a point that did not finish: listed as failed, non-zero exit, CSV and plot still written
variant short 'None'
head -n 3 "$study/runs/N1-n2-b100/metrics.jsonl" > "$tmp/short/runs/N1-n2-b100/metrics.jsonl"
if "$collect" "$tmp/short" > "$tmp/short.log" 2>&1; then fail "an unfinished point: exit 0"
elif grep -q "some points failed" "$tmp/short.log" && [ -s "$tmp/short/scaling.png" ] &&
     [ "$(tr -d '\r' < "$tmp/short/scaling.csv" | grep -c ',12,failed$')" = 2 ] &&
     [ "$(tr -d '\r' < "$tmp/short/scaling.csv" | grep -c ',ok$')" = 2 ]; then
  ok "an unfinished point: its rows (strong and weak) are marked failed, the others are kept, exit non-zero"
else fail "an unfinished point: $(cat "$tmp/short.log" "$tmp/short/scaling.csv" 2>&1)"; fi

finish scaling_collect
