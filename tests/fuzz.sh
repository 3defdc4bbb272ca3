#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz/fuzz_*.c) for a bounded time each, in the
# test suite: tools/fuzz builds build-fuzz/ with clang once (about 4 minutes
# on this 2-core machine under load; later runs reuse it and rebuild only what
# changed) and runs config, idx and ckpt for FUZZ_SECONDS each [20] with a fixed
# seed (FUZZ_SEED [1]) on a fresh copy of the seed corpora (tests/fuzz/), so
# that a run is repeatable up to the time bound. A crash, sanitizer report,
# leak, timeout or out-of-memory input fails the test with the finding's path
# (kept in BUILD/fuzz-findings/TARGET/ with the fuzzer's log; reproduce with
# build-fuzz/fuzz_TARGET FILE). Without clang and its libFuzzer runtime it
# fails with the packages to install; it never skips.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
seconds=${FUZZ_SECONDS:-20}
if ! command -v clang > /dev/null || [ ! -f "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
  fail "clang with libFuzzer missing: apt-get install -y clang libclang-rt-14-dev (tools/setup.sh installs them)"
  finish fuzz
fi
findings_root=$build/fuzz-findings
rm -rf "$findings_root"
mkdir -p "$findings_root" "$tmp/corpus"
for t in config idx ckpt; do
  start=$SECONDS rc=0
  FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_CORPUS=$tmp/corpus FUZZ_FINDINGS=$findings_root GENTRAIN=$bin \
    "$src/tools/fuzz" "$t" "$seconds" > "$tmp/$t.out" 2>&1 || rc=$?
  cat "$tmp/$t.out"
  found=$(find "$findings_root/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
            -o -name 'oom-*' \) 2> /dev/null | sort | tr '\n' ' ')
  if [ -n "$found" ]; then
    fail "fuzz_$t: findings: $found(log $findings_root/$t/fuzz.log; reproduce: $src/build-fuzz/fuzz_$t FILE)"
  elif [ "$rc" != 0 ]; then
    fail "fuzz_$t: tools/fuzz exited $rc without a finding: $(tail -n 5 "$tmp/$t.out")"
  elif ! grep -q "^fuzz_$t: [0-9]* runs" "$tmp/$t.out"; then
    fail "fuzz_$t: no run count in the output"
  else
    ok "$(grep "^fuzz_$t: " "$tmp/$t.out" | tail -n 1) ($((SECONDS - start)) s with the build)"
  fi
done
finish fuzz
