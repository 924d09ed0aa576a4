#!/usr/bin/env bash
# The chaos run (tests/chaos/run, `make chaos`), shortened for `make test`: 15 s of SIGKILLs of
# the broker, workers, worker-pool and the router under load, then every invariant checked
# (nothing confirmed lost, duplicates bounded, the broker's books equal to the ledger, no
# process left). CHAOS_SEED and CHAOS_SECONDS still apply.
CHAOS_SECONDS=${CHAOS_SECONDS:-15} exec bash "$(dirname "$0")/../chaos/run"
