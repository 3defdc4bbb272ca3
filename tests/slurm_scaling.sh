#!/usr/bin/env bash
# The scaling study at a tiny size on a real one-machine Slurm
# (tools/slurm-local): tools/scaling-submit runs strong and weak scaling over
# 1 and 2 ranks (mlpvae, 60 steps each), the collector job writes
# scaling.csv with images/s and the step-time breakdown, and scaling.png.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/slurm_common.bash
source "$src/tests/slurm_common.bash"
"$py" -c 'import matplotlib' 2>/dev/null || die "matplotlib missing for /usr/bin/python3: apt-get install -y python3-matplotlib"

study=$work/study
if "$src/tools/scaling-submit" --study "$study" --ranks-per-node "1 2" --batch 100 --steps 60 --time 5 --wait \
        "$src/configs/mlpvae.ini" data.limit=6000 > "$work/submit.log" 2>&1; then
    ok "scaling-submit --wait: study finished"
else fail "scaling-submit failed"; cat "$work/submit.log"; fi
csv=$study/scaling.csv
if [ -f "$csv" ] && "$py" - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("\n".join(f"  {r['mode']:6} ranks {r['ranks']} batch {r['batch_per_rank']:>3}/rank: {float(r['img_per_s']):9.0f} img/s, "
                f"{float(r['step_ms']):6.2f} ms/step, efficiency {r['efficiency']}" for r in rows))
assert len(rows) == 4, rows
assert {(r["mode"], r["ranks"]) for r in rows} == {("strong", "1"), ("strong", "2"), ("weak", "1"), ("weak", "2")}
for r in rows:
    assert r["status"] == "ok", r
    assert float(r["img_per_s"]) > 0 and float(r["step_ms"]) > 0, r
    assert int(r["global_batch"]) == int(r["batch_per_rank"]) * int(r["ranks"]), r
    assert int(r["timed_steps"]) > 0, r
    # gentrain logs comm_wait_frac on more than one rank only
    assert (r["comm_wait_frac"] != "") == (r["ranks"] == "2"), r
    if r["ranks"] == "2":
        assert 0 <= float(r["comm_wait_frac"]) < 1 and float(r["comm_ms"]) >= 0 and float(r["compute_ms"]) > 0, r
strong = {r["ranks"]: r for r in rows if r["mode"] == "strong"}
assert strong["1"]["global_batch"] == strong["2"]["global_batch"] == "200"
weak = {r["ranks"]: r for r in rows if r["mode"] == "weak"}
assert weak["1"]["batch_per_rank"] == weak["2"]["batch_per_rank"] == "100"
assert float(strong["1"]["efficiency"]) == 1.0 and float(weak["1"]["efficiency"]) == 1.0
PY
then ok "scaling.csv: strong and weak rows for 1 and 2 ranks with images/s, step times and comm_wait_frac (2 ranks)"
else fail "scaling.csv missing or wrong"; fi
png=$study/scaling.png
if [ -s "$png" ] && [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    ok "scaling.png written ($(stat -c %s "$png") bytes)"; else fail "no scaling.png"; fi
finish
