#!/usr/bin/env bash
# Every shell script of the repository is clean under shellcheck (Debian's):
#  1. the scripts are found by name (*.sh, *.bash, *.sbatch) or by their #!
#     line (bash or sh), everywhere but .git, build*/ and runs/; the known
#     ones (tests/, tools/, jobs/) must be among them;
#  2. `shellcheck -x --severity=style -o quote-safe-variables` reports
#     nothing: every finding at every severity, sourced files followed, and
#     every expansion quoted;
#  3. a `# shellcheck disable=` says why (a comment after the codes): only
#     false positives are silenced;
#  4. one convention for options: a script with a #! line starts (first
#     command) with `set -euo pipefail`; a sourced file (no #! line) sets no
#     options of its own and inherits those of the script that sources it.
set -euo pipefail
build=$1 src=$2
# shellcheck source-path=SCRIPTDIR/.. source=tests/common.bash
source "$src/tests/common.bash"
command -v shellcheck > /dev/null ||
  { echo "FAIL: shellcheck missing: apt-get install -y shellcheck (tools/setup.sh --no-build installs it)"; exit 1; }
cd "$src"

# 1. the scripts
is_shell() {  # FILE: a shell script by its name or its #! line
  local first=""
  case "$1" in *.sh|*.bash|*.sbatch) return 0 ;; esac
  IFS= read -r first < "$1" 2>/dev/null || true
  [[ "$first" =~ ^#!.*[/\ ](ba)?sh([[:space:]]|$) ]]
}
scripts=()
while IFS= read -r -d '' f; do
  f=${f#./}
  if is_shell "$f"; then scripts+=("$f"); fi
done < <(find . \( -name .git -o -path './build*' -o -path ./runs -o -path "./${build#"$src"/}" \) -prune \
              -o -type f -print0 | sort -z)
missing=()
for f in tests/common.bash tests/slurm_common.bash tests/lint_shell.sh tests/mpi_invariance.sh \
         tools/setup.sh tools/test tools/quickstart.sh tools/bench tools/slurm-local tools/scaling-submit \
         tools/scaling-collect jobs/train.sbatch jobs/chain jobs/scaling.sbatch; do
  [[ " ${scripts[*]} " == *" $f "* ]] || missing+=("$f")
done
if [ "${#missing[@]}" -eq 0 ]; then ok "found ${#scripts[@]} shell scripts: ${scripts[*]}"
else fail "the search for shell scripts missed ${missing[*]} (found: ${scripts[*]})"; fi

# 2. shellcheck
if shellcheck --version > "$tmp/version.txt" 2>&1 &&
   shellcheck -x --severity=style -o quote-safe-variables "${scripts[@]}" > "$tmp/sc.txt" 2>&1; then
  ok "shellcheck $(sed -n 's/^version: //p' "$tmp/version.txt") -x --severity=style -o quote-safe-variables: ${#scripts[@]} scripts, no findings"
else
  cat "$tmp/sc.txt"
  fail "shellcheck: $(grep -c '^In ' "$tmp/sc.txt") finding(s) (above)"
fi

# 3. every disable has a reason
if grep -nE '^[[:space:]]*# shellcheck disable=' "${scripts[@]}" | grep -vE 'disable=SC[0-9]+(,SC[0-9]+)*[[:space:]]+#[[:space:]]*[^[:space:]]' > "$tmp/noreason.txt"; then
  fail "shellcheck disable without a reason ('# shellcheck disable=SCnnnn  # why'): $(cat "$tmp/noreason.txt")"
else ok "every shellcheck disable says why ($(cat "${scripts[@]}" | grep -cE '^[[:space:]]*# shellcheck disable=') in all)"; fi

# 4. set -euo pipefail
bad=()
for f in "${scripts[@]}"; do
  first_cmd=$(grep -vE '^[[:space:]]*(#|$)' "$f" | head -n 1) || true
  if head -n 1 "$f" | grep -q '^#!'; then
    [[ "$first_cmd" =~ ^set\ -euo\ pipefail([[:space:]]|$) ]] || bad+=("$f: first command is '$first_cmd'")
  elif grep -nE '^[[:space:]]*set [-+][a-z]*[euo]' "$f" > "$tmp/set.txt"; then
    bad+=("$f (sourced) sets options: $(tr '\n' ' ' < "$tmp/set.txt")")
  fi
done
if [ "${#bad[@]}" -eq 0 ]; then ok "every script starts with set -euo pipefail; sourced files inherit it"
else fail "option convention: $(printf '%s; ' "${bad[@]}")"; fi

finish lint_shell
