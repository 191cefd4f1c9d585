#!/usr/bin/env python3
"""Peak memory of `kmsconf plan` in each output format, on one fleet (issue 22: the markdown plan
of 100,000 hosts peaked at 3 times the human one's). Rerun with:

    python3 scripts/plan-rss.py [--hosts 100000] [--binary target/release/kmsconf] [--runs 1]

Builds the fleet of scripts/bench.py (each host: the Windows KMS host key, two Office products,
service settings, firewall rules; every change pending), then runs a fresh `plan --format F` for
human, json and markdown and prints, as a Markdown table, each format's wall time and peak RSS
(the largest of --runs runs) and its ratio to the human plan's. Without --binary it builds and
uses the release binary.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, fleet, run  # noqa: E402

FORMATS = ["human", "json", "markdown"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--binary", help="a kmsconf binary (default: build and use the release one)")
    a = ap.parse_args()
    binary = a.binary
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kmsconf"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "kmsconf")
    binary = os.path.abspath(binary)
    base = tempfile.mkdtemp(prefix="kmsconf-plan-rss-")
    try:
        d = fleet(a.hosts, base)
        rows = {}
        for f in FORMATS:
            peak, seconds = 0, []
            for _ in range(a.runs):
                t, rss, code, _ = run(binary, ["plan", "--format", f], d)
                if code != 0:
                    sys.exit(f"plan --format {f} exited {code}")
                peak, seconds = max(peak, rss), seconds + [t]
            rows[f] = (min(seconds), peak / 1024)
        print(f"| format ({a.hosts} hosts) | wall time | peak RSS | peak RSS / human's |")
        print("|---|---|---|---|")
        for f, (t, mib) in rows.items():
            print(f"| {f} | {t:.1f} s | {mib:.0f} MiB | {mib / rows['human'][1]:.2f} |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
