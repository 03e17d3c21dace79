#!/usr/bin/env python3
"""Gathers `make bench-principal`'s measurements into principal.json and prints it.

Usage: principal_bench.py BENCH_OUT_DIR
Reads replay-principal-{off,on}.json (replay --stats), replay-principal-{off,on}.time (/usr/bin/time)
and deltas-principal-{off,on}.json (delta_bench) from BENCH_OUT_DIR. The ratios are of figures
measured in the same run, on the same files."""
import json
import os
import sys


def load(directory, name):
    with open(os.path.join(directory, name)) as f:
        return json.load(f)


def main():
    directory = sys.argv[1]
    out = {}
    for side in ("off", "on"):
        replay = load(directory, f"replay-principal-{side}.json")
        replay.update(load(directory, f"replay-principal-{side}.time"))
        out[f"replay_{side}"] = replay
        out[f"deltas_{side}"] = load(directory, f"deltas-principal-{side}.json")
    off, on = out["replay_off"], out["replay_on"]
    d_off, d_on = off["detector"], on["detector"]
    events = on["records"]
    out["ratios"] = {
        "replay_seconds": on["seconds"] / max(off["seconds"], 1e-9),
        "replay_max_rss": on["max_rss_kb"] / max(off["max_rss_kb"], 1),
        "series": d_on["series"] / max(d_off["series"], 1),
        "state_gzip_bytes": d_on["state_gzip_bytes"] / max(d_off["state_gzip_bytes"], 1),
        "detect_seconds": d_on["detect_seconds"] / max(d_off["detect_seconds"], 1e-9),
        "write_units_per_1000_events": out["deltas_on"]["write_units_per_1000_events"]
        / max(out["deltas_off"]["write_units_per_1000_events"], 1e-9),
    }
    out["per_1m_events_on"] = {
        "stored_cells": on["detector"]["stored_cells"] * 1e6 / max(events, 1),
        "write_units": out["deltas_on"]["write_units_per_1000_events"] * 1000,
        "detect_seconds": d_on["detect_seconds"] * 1e6 / max(events, 1),
    }
    with open(os.path.join(directory, "principal.json"), "w") as f:
        json.dump(out, f, indent=2, sort_keys=True)
    print(json.dumps(out, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
