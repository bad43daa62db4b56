#!/usr/bin/env bash
# The search service's entry point. A Ray driver needs a node of its cluster on its own host, so
# this joins the cluster at $RAY_ADDRESS as a node that offers no CPUs or GPUs (trials run on
# the workers), then runs the command in its place: `nas search ... ray.address=auto` drives the
# cluster from here and gets the stop signals itself.
set -euo pipefail
ray start --address="${RAY_ADDRESS:?RAY_ADDRESS names the Ray head, e.g. ray-head:6379}" \
    --num-cpus=0 --num-gpus=0 --disable-usage-stats
exec "$@"
