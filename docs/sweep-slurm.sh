#!/usr/bin/env bash
# A sweep on Slurm (docs/SWEEPS.md): a job array runs N shards, one task each
# (SLURM_ARRAY_TASK_ID = 1 … N is the shard), then a merge job that depends on
# the whole array. Submit from the repository's root on a shared file system:
#
#   ARRAY=$(sbatch --parsable docs/sweep-slurm.sh Sweeps/handover-ci.yaml 8)
#   sbatch --dependency=afterany:$ARRAY --wrap \
#     ".build/release/wayside merge results/handover-ci.shard-*-of-8 --output results/handover-ci \
#      --baseline Sweeps/handover-ci.baseline.json --junit results/handover-ci/junit.xml"
#
# `afterany` so that the merge runs (and reports the failed runs in its summary
# and exit status) even when a shard exited 1.
#
# Privileges: simulated sweeps run as any user. Real runs need root (or
# CAP_NET_ADMIN + CAP_SYS_ADMIN + CAP_NET_RAW and a writable /run/netns) on the
# compute node; with an ordinary Slurm account run them simulated, or through
# a site's privileged partition/container runtime.
#
# Results: each task writes results/<sweep>.shard-K-of-N/ under the submit
# directory; the merge copies the runs into results/<sweep>/.
#SBATCH --job-name=wayside-sweep
#SBATCH --array=1-8
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --output=results/slurm-%A_%a.out
set -euo pipefail

SWEEP=${1:?usage: sbatch --array=1-N docs/sweep-slurm.sh SWEEP.yaml N}
N=${2:?the number of shards, equal to the array size}
K=${SLURM_ARRAY_TASK_ID:?run this through sbatch --array}
NAME=$(basename "$SWEEP" .yaml)

exec .build/release/wayside sweep "$SWEEP" \
  --shard "$K/$N" \
  --jobs "${SLURM_CPUS_PER_TASK:-1}" \
  --output "results/$NAME.shard-$K-of-$N"
