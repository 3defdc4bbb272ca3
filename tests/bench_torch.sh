#!/usr/bin/env bash
# The PyTorch side of tools/bench runs with what gentrain sets up in its own
# process (tools/torch_ref.py gentrain_process_settings), so that the bench
# compares the two programs' steps and not glibc's malloc settings:
#  1. tools/torch_bench.py (vae, a few steps) says it ran with gentrain's malloc
#     settings and denormals flushed, and its timed steps (plain and DDP)
#     fault fewer than a tenth of the pages that the plain step faults with
#     glibc's defaults (--malloc glibc), which map and unmap PyTorch's tensors
#     every step (the DDP step's glibc count varies with the heap: printed);
#  2. after gentrain_process_settings() PyTorch flushes denormals to zero, and
#     glibc keeps freed memory: three 8 MiB blocks allocated, written and freed
#     ten times fault (almost) no page, against more than 10000 with glibc's
#     defaults (gentrain_process_settings("glibc"));
#  3. bad values: torch_bench.py --malloc other and BENCH_TORCH_MALLOC=other
#     exit non-zero naming the value;
#  4. the bench names OpenBLAS's kernel (tool_sgemm --kernel): one word, the
#     one OPENBLAS_CORETYPE names where the environment sets it.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
"$py" -c 'import torch' 2>/dev/null || { echo "FAIL: torch missing for $py: apt-get install -y python3-torch"; exit 1; }

# 1. the bench's PyTorch runs, both malloc settings
for m in gentrain glibc; do
  "$py" "$src/tools/torch_bench.py" --malloc "$m" "$src/configs/vae.ini" --steps 20 --warmup 10 > "$tmp/$m.json" ||
      fail "torch_bench.py --malloc $m failed"
done
if "$py" - "$tmp/gentrain.json" "$tmp/glibc.json" <<'PY'
import json, sys
ours, glibc = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:3])
errors = []
if ours.get("malloc") != "gentrain" or glibc.get("malloc") != "glibc":
    errors.append(f"malloc fields {ours.get('malloc')!r}, {glibc.get('malloc')!r}: expected 'gentrain', 'glibc'")
if ours.get("flush_denormal") is not True:
    errors.append("flush_denormal is not true")
# glibc's defaults fault the plain step's tensors in anew every step; the DDP
# step's (bucket views) only until its heap happens to settle: 0 to 2204 per step
# from run to run, so that count is printed, and both of ours are held to the plain one
base = glibc["plain_faults_per_step"]
for path in ("plain", "ddp"):
    a, b = ours[f"{path}_faults_per_step"], glibc[f"{path}_faults_per_step"]
    print(f"{path}: page faults per step {a:.0f} with gentrain's malloc settings, {b:.0f} with glibc's")
    if not a * 10 <= base:
        errors.append(f"{path}: {a:.0f} faults per step with gentrain's settings, not a tenth of glibc's plain step's {base:.0f}")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY
then ok "torch_bench.py: gentrain's malloc settings by default; a tenth of glibc's plain step's page faults or fewer"
else fail "torch_bench.py: malloc settings or page faults (above)"; fi

# 2. what gentrain_process_settings sets: denormals flushed; three 8 MiB blocks
# allocated, written and freed ten times fault no page (glibc's defaults give
# the freed top of the heap back at every round: about 6000 faults a round)
settings_check() {
  "$py" - "$src/tools" "$1" <<'PY'
import ctypes, resource, sys
sys.path.insert(0, sys.argv[1])
import torch
import torch_ref
assert torch_ref.gentrain_process_settings(sys.argv[2]) == {"malloc": sys.argv[2], "flush_denormal": True}
assert (torch.tensor([1e-39]) * 1.0).item() == 0.0, "denormals are not flushed to zero"
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
n = 8 << 20  # above glibc's default mmap threshold (128 KiB), below gentrain's (32 MiB)
def round_of_blocks():
    blocks = [libc.malloc(n) for _ in range(3)]
    assert all(blocks), "malloc failed"
    for p in blocks:
        ctypes.memset(p, 1, n)
    for p in blocks:
        libc.free(p)
for _ in range(3):
    round_of_blocks()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_of_blocks()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
PY
}
if ours=$(settings_check gentrain) && theirs=$(settings_check glibc); then
  echo "page faults of ten rounds of three 8 MiB blocks: $ours with gentrain's settings, $theirs with glibc's"
  if [ "$ours" -lt 100 ] && [ "$theirs" -gt 10000 ]; then
    ok "gentrain_process_settings: denormals flushed; freed memory kept ($ours faults; glibc's defaults $theirs)"
  else fail "gentrain_process_settings: $ours page faults with gentrain's settings, $theirs with glibc's"; fi
else fail "gentrain_process_settings (above)"; fi

# 3. bad values
if "$py" "$src/tools/torch_bench.py" --malloc other "$src/configs/vae.ini" > "$tmp/bad.out" 2>&1; then
  fail "torch_bench.py --malloc other: exit 0"
elif grep -q "other" "$tmp/bad.out"; then ok "torch_bench.py --malloc other: refused, naming the value"
else fail "torch_bench.py --malloc other: $(cat "$tmp/bad.out")"; fi
if (cd "$src" && BENCH_TORCH_MALLOC=other tools/bench) > "$tmp/bad.out" 2>&1; then
  fail "BENCH_TORCH_MALLOC=other tools/bench: exit 0"
elif grep -q "BENCH_TORCH_MALLOC.*other" "$tmp/bad.out"; then ok "BENCH_TORCH_MALLOC=other: refused, naming the value"
else fail "BENCH_TORCH_MALLOC=other: $(cat "$tmp/bad.out")"; fi

# 4. the kernel's name
kernel=$("$build/tool_sgemm" --kernel)
if [[ "$kernel" =~ ^[A-Za-z0-9_]+$ ]] &&
   { [ -z "${OPENBLAS_CORETYPE:-}" ] || [ "${kernel,,}" = "${OPENBLAS_CORETYPE,,}" ]; }; then
  ok "tool_sgemm --kernel: $kernel (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
else fail "tool_sgemm --kernel: '$kernel' (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"; fi
finish bench_torch
