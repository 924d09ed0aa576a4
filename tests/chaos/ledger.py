#!/usr/bin/env python3
"""The chaos run's books: what the producers had confirmed against what the handler ran and
what the broker holds at the end.

    ledger.py DIR STATS_JSON DEAD_JSON

DIR holds ledger.GROUP (confirmed payloads, one a line: GROUP-N) and runs (one line per
successful handler run: the payload). STATS_JSON and DEAD_JSON are files with the output of
`ctl stats --json` and `ctl dead list --json --max 10000` taken once every job had settled.
Prints one key=value line per figure (read by tests/chaos/run) and, for a few kinds of failure,
"# " lines naming examples.
"""
import collections
import glob
import json
import os
import sys

POISON = 97  # payload numbers divisible by this always fail: they must end dead


def num(payload):
    return int(payload.rsplit("-", 1)[1])


def main():
    d, stats_path, dead_path = sys.argv[1:4]
    ledger = []
    by_group = collections.Counter()
    for path in sorted(glob.glob(os.path.join(d, "ledger.*"))):
        group = path.rsplit(".", 1)[1]
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n")
                if p:
                    ledger.append(p)
                    by_group[group] += 1
    confirmed = set(ledger)
    runs = collections.Counter()
    runs_path = os.path.join(d, "runs")
    if os.path.exists(runs_path):
        with open(runs_path) as f:
            for line in f:
                p = line.rstrip("\n")
                if p:
                    runs[p] += 1
    with open(stats_path) as f:
        stats = json.load(f)
    with open(dead_path) as f:
        deadl = json.load(f)
    dead = collections.Counter(j["payload"] for j in deadl["jobs"])
    dead_set = set(dead)
    done_set = set(runs)

    queued = sum(q["ready"] + q["reserved"] + q["delayed"] for q in stats["queues"])
    missing = sorted(confirmed - done_set - dead_set, key=lambda p: (p.split("-")[0], num(p)))
    # A job still queued is neither run nor dead; the broker lists only dead jobs, so those
    # still queued are counted, not named: lost is what even they cannot explain.
    lost = max(0, len(missing) - queued)
    unknown = sorted((done_set | dead_set) - confirmed)
    dups = sum(c - 1 for c in runs.values() if c > 1)
    dup_jobs = sum(1 for c in runs.values() if c > 1)
    poison = {p for p in confirmed if num(p) % POISON == 0}
    poison_run = sorted(poison & done_set)
    groups = {g["name"]: g for g in stats["groups"]}
    dead_by_group = collections.Counter(p.split("-")[0] for p in dead_set)
    group_dead_diff = [
        "%s: broker %d, ledger %d" % (g, groups.get(g, {}).get("dead", 0), dead_by_group[g])
        for g in sorted(by_group)
        if groups.get(g, {}).get("dead", 0) != dead_by_group[g]
    ]
    group_count = sum(groups.get(g, {}).get("count", 0) for g in by_group)

    out = {
        "confirmed": len(ledger),
        "confirmed_unique": len(confirmed),
        "groups": len(by_group),
        "done": len(done_set & confirmed),
        "runs": sum(runs.values()),
        "dead": len(dead_set),
        "dead_listed_twice": sum(1 for c in dead.values() if c > 1),
        "dead_total": deadl["total"],
        "dead_poison": len(dead_set & poison),
        "dead_other": len(dead_set - poison),
        "done_and_dead": len(done_set & dead_set),
        "poison": len(poison),
        "poison_run": len(poison_run),
        "queued": queued,
        "missing": len(missing),
        "lost": lost,
        "unknown": len(unknown),
        "dups": dups,
        "dup_jobs": dup_jobs,
        "next_id": stats["broker"]["next_id"],
        "broker_jobs": stats["broker"]["jobs"],
        "broker_reserved": stats["broker"]["reserved"],
        "queues_dead": sum(q["dead"] for q in stats["queues"]),
        "group_count": group_count,
        "group_dead_diff": len(group_dead_diff),
        "groups_done_session": sum(g["done"] for g in stats["groups"]),
        "groups_pushed_session": sum(g["pushed"] for g in stats["groups"]),
    }
    for k, v in out.items():
        print("%s=%d" % (k, v))
    if missing:
        print("# neither run nor dead (first 10): " + " ".join(missing[:10]))
    if unknown:
        print("# run or dead but never confirmed (first 10): " + " ".join(unknown[:10]))
    if poison_run:
        print("# always-failing jobs that ran to success (first 10): " + " ".join(poison_run[:10]))
    for line in group_dead_diff:
        print("# dead per group differs: " + line)


if __name__ == "__main__":
    main()
