#!/usr/bin/python3
"""Plot events/s per workload, jarvis-events against the baseline.

Reads the JSON Lines that jarvis-bench prints and writes a PNG bar chart.
The sync workload reports ns per event, which is drawn as 1e9 / ns.

    bench/plot-benchmarks.py docs/benchmarks/results.jsonl docs/benchmarks/events-per-second.png
"""

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def label_of(result):
    """Name a bar group after its workload and the parameter that distinguishes its runs."""
    label = result["workload"]
    if "queue_capacity" in result:
        label += "\nqueue {}".format(result["queue_capacity"])
    if result.get("input") == "largest recording":
        label += "\nrecording"
    elif "input" in result:
        label += "\nevents file"
    return label


def throughput_rows(results):
    """Return (label, jarvis events/s, baseline events/s or None) per workload."""
    rows = []
    for result in results:
        metric = result["metric"]
        if metric == "events_per_s":
            rows.append((label_of(result), result["median"], result["baseline_median"]))
        elif metric == "ns_per_event" and result["median"]:
            baseline = result["baseline_median"]
            rows.append((label_of(result), 1e9 / result["median"], 1e9 / baseline if baseline else None))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="JSON Lines output of jarvis-bench")
    parser.add_argument("output", help="PNG file to write")
    args = parser.parse_args()

    with open(args.results, encoding="utf-8") as stream:
        results = [json.loads(line) for line in stream if line.strip()]

    rows = [row for row in throughput_rows(results) if row[1] is not None]
    if not rows:
        sys.exit("plot-benchmarks: no events_per_s or ns_per_event result with a jarvis median in " + args.results)

    positions = range(len(rows))
    width = 0.4
    figure, axes = plt.subplots(figsize=(2 + 1.6 * len(rows), 4.5))
    axes.bar([p - width / 2 for p in positions], [row[1] for row in rows], width, label="jarvis-events")
    axes.bar([p + width / 2 for p in positions], [row[2] or 0 for row in rows], width, label="baseline (raw GLib)")
    axes.set_xticks(list(positions))
    axes.set_xticklabels([row[0] for row in rows])
    axes.set_ylabel("events/s (median)")
    axes.set_yscale("log")
    axes.set_title("jarvis-bench: events/s per workload")
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.output, dpi=100)


if __name__ == "__main__":
    main()
