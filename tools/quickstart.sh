#!/usr/bin/env bash
# The main job: set up and build (tools/setup.sh), then train the reference
# DCGAN with the DCGAN paper's recipe (configs/dcgan-paper.ini, 600 steps of
# 2 x 64 images, about 5 minutes here) on Fashion-MNIST with 2 MPI ranks.
# Leaves in runs/quickstart/: checkpoints/step-*.h5, samples.h5, samples.png
# (written by train), grid.png (written by `gentrain sample` from the last
# checkpoint), metrics.jsonl, metrics.h5 and config.ini.
# Extra arguments are passed on to train, e.g. train.steps=100.
# Running it again resumes (or says there is nothing to do); start over with
# run.resume=never.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run=runs/quickstart
mpirun -np 2 --oversubscribe build/gentrain train configs/dcgan-paper.ini run.dir="$run" train.steps=600 "$@"
# shellcheck disable=SC2012  # gentrain's checkpoint names: step-NNNNNNNN.h5
last=$(ls "$run"/checkpoints/step-*.h5 | sort | tail -n 1)
build/gentrain sample "$last" --n 64 --out "$run/grid.png"
echo "quickstart: checkpoint $last, samples $run/samples.h5, grids $run/samples.png and $run/grid.png"
echo "evaluate it with: build/gentrain eval $last   (FID, precision/recall, memorization, ...; the first"
echo "evaluation trains gentrain's feature classifier once, a few minutes on one core)"
