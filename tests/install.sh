#!/usr/bin/env bash
# Installing as cluster users do: `cmake --install build --prefix P` puts the
# program in P/bin, and the reference configs, the job scripts and the tools
# under P/share/gentrain; `gentrain --version` names the version and the git
# revision; the installed job script knows P (it finds P/bin/gentrain and the
# installed configs by name); a short training run works from the installed
# files alone, and its checkpoint records the version.
set -euo pipefail
build=$1 src=$2
source "$src/tests/common.bash"

p=$tmp/prefix
if cmake --install "$build" --prefix "$p" > "$tmp/install.log" 2>&1; then ok "cmake --install into $p"
else fail "cmake --install: $(tail -5 "$tmp/install.log")"; finish install; exit 1; fi
missing=""
for f in bin/gentrain share/gentrain/configs/dcgan.ini share/gentrain/configs/vae.ini share/gentrain/configs/classifier.ini \
         share/gentrain/jobs/train.sbatch share/gentrain/jobs/chain share/gentrain/jobs/scaling.sbatch \
         share/gentrain/tools/slurm-local share/gentrain/tools/scaling-submit share/gentrain/tools/scaling-collect \
         share/gentrain/tools/torch_ref.py share/gentrain/tools/load_checkpoint.py; do
  [ -e "$p/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then ok "program, configs, job scripts and tools installed"; else fail "not installed:$missing"; fi
if [ -x "$p/share/gentrain/jobs/train.sbatch" ] && [ -x "$p/share/gentrain/tools/slurm-local" ]; then
  ok "installed scripts are executable"; else fail "installed scripts are not executable"; fi

version=$("$p/bin/gentrain" --version)
if [[ "$version" =~ ^gentrain\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ [0-9a-f]{7,}(-dirty)?\)$ ]]; then ok "--version: $version"
else fail "--version says '$version'"; fi
rev=$(git -C "$src" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
case "$version" in *"$rev"*) ok "the version names the source's revision $rev" ;;
  *) fail "the version '$version' does not name the revision $rev (rebuild after the last commit?)" ;; esac

if grep -q "^GENTRAIN_PREFIX=\"$p\"$" "$p/share/gentrain/jobs/train.sbatch" &&
   grep -q '^GENTRAIN_PREFIX=""$' "$src/jobs/train.sbatch"; then ok "the installed train.sbatch knows its prefix"
else fail "the installed train.sbatch does not carry GENTRAIN_PREFIX=$p"; fi

# The installed job script as Slurm runs it (the environment a job gets),
# with mpirun and a bare config name that only the install has.
mkdir -p "$tmp/submit"
if (cd "$tmp/submit" && env -u GENTRAIN PATH=/usr/bin:/bin SLURM_JOB_ID=4242 SLURM_SUBMIT_DIR="$tmp/submit" SLURM_NTASKS=2 \
    LAUNCHER=mpirun REQUEUE=0 RUN_DIR="$tmp/submit/run" LAUNCH_ARGS=--oversubscribe \
    bash "$p/share/gentrain/jobs/train.sbatch" mlpvae train.steps=20 log.every=10 checkpoint.every=20 \
    > "$tmp/job.log" 2>&1); then
  ok "installed train.sbatch ran mlpvae (a bare config name) with the installed program"
else fail "installed train.sbatch: $(tail -5 "$tmp/job.log")"; fi
if grep -q "$p/bin/gentrain train $p/share/gentrain/configs/mlpvae.ini" "$tmp/job.log"; then
  ok "it used $p/bin/gentrain and the installed config"
else fail "the job did not use the installed files: $(grep 'train' "$tmp/job.log" | head -3)"; fi
ck=$tmp/submit/run/checkpoints/step-00000020.h5
if [ -f "$ck" ] && "$p/bin/gentrain" inspect "$ck" > "$tmp/inspect.txt" &&
   grep -qF "gentrain_version = \"${version#gentrain }\"" "$tmp/inspect.txt"; then
  ok "the checkpoint records the version"
else fail "the checkpoint $ck does not record gentrain_version"; fi
# the same installed script, asked for a config that exists nowhere
if (cd "$tmp/submit" && SLURM_JOB_ID=1 bash "$p/share/gentrain/jobs/train.sbatch" nosuch > "$tmp/bad.log" 2>&1); then
  fail "a missing config was accepted"
elif grep -q "config nosuch not found .*or in $p/share/gentrain/configs" "$tmp/bad.log"; then ok "a missing config is named with both places looked in"
else fail "missing config: $(cat "$tmp/bad.log")"; fi

finish install
