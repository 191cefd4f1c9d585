#!/usr/bin/env python3
"""Fleet benchmarks for kmsconf against lab hosts (issue 5). Rerun with:

    python3 scripts/bench.py [--sizes 1,10,100,1000] [--runs 5] [--latency-sizes 8,64,256]
    python3 scripts/bench.py --scale-sizes 1000,10000 --runs 3   # the 10,000-host budget

For each fleet size it builds a config whose hosts each have the Windows KMS host key and two
Office products (packs, keys, activation), service settings and firewall rules, then measures:
  * `plan` of a fresh fleet (every change pending): median wall time and peak RSS of the process;
  * `apply` of that plan, and the round trips it made per host (the count each lab host keeps in
    its `PATH.lock`) against the number of dependency levels (batches) apply reported;
  * a no-change `plan`: round trips per host (must be 1);
  * with every lab host answering after 50 ms: `plan` wall time with --parallelism 8 against the
    ideal hosts / 8 x 50 ms and the serial hosts x 50 ms.
With --scale-sizes, for each size it measures `validate`, a fresh `plan` and a no-change `plan`
(median wall time and peak RSS), and prints each against the 10,000-host budget (validate
< 1 s, plan < 3 s, peak RSS < 300 MB) and the ratio to the first size: linear growth keeps
time per host flat. `--max-validate`, `--max-plan` and `--max-rss-mb` set the budget.
Prints a Markdown table; figures are medians of --runs runs.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {
    "KMS_HOST_KEY": "BCDFG-HJKMP-QRTVW-XY234-6789B",
    "OFFICE_2019_KEY": "PQRTV-WXY23-46789-BCDFG-HJKMP",
    "OFFICE_2021_KEY": "XY234-6789B-CDFGH-JKMPQ-RTVWX",
}


def host_block(i):
    return f"""
[hosts.h{i:05d}]
target = "lab:lab/h{i:05d}.json"

[hosts.h{i:05d}.service]
port = 1689
activation_interval = 60
renewal_interval = 4320
low_priority = true

[hosts.h{i:05d}.firewall]
rule_groups = ["key-management-service", "file-and-printer-sharing"]
remote_addresses = ["10.0.0.0/8"]

[hosts.h{i:05d}.products.windows]
host_key = {{ env = "KMS_HOST_KEY" }}

[hosts.h{i:05d}.products.office-2019]
host_key = {{ env = "OFFICE_2019_KEY" }}
license_pack = "packs/office"

[hosts.h{i:05d}.products.office-2021]
host_key = {{ env = "OFFICE_2021_KEY" }}
license_pack = "packs/office"
"""


CPU = {}


def run(binary, args, cwd):
    """Runs kmsconf; returns (seconds, peak RSS in KiB, exit code, stdout). The CPU seconds it
    used (user + system) are kept in CPU[tuple(args)], last run."""
    env = dict(os.environ, **KEYS)
    env.pop("KMSCONF_LOG", None)
    start = time.perf_counter()
    proc = subprocess.Popen([binary, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    CPU[tuple(args)] = usage.ru_utime + usage.ru_stime
    return elapsed, usage.ru_maxrss, os.waitstatus_to_exitcode(status), out.decode()


def fleet(n, base):
    d = os.path.join(base, f"fleet-{n}")
    os.makedirs(os.path.join(d, "packs", "office"), exist_ok=True)
    with open(os.path.join(d, "kmsconf.toml"), "w") as f:
        f.write("".join(host_block(i) for i in range(n)))
    return d


def lab_files(d):
    lab = os.path.join(d, "lab")
    return [os.path.join(lab, f) for f in sorted(os.listdir(lab)) if f.endswith(".json")]


def round_trips(d):
    """Each lab host's count of the round trips kmsconf made to it, which its lock file holds."""
    return [int(open(p + ".lock").read() or 0) for p in lab_files(d)]


def set_latency(d, ms):
    for p in lab_files(d):
        data = json.load(open(p))
        data["latency_ms"] = ms
        with open(p, "w") as f:
            json.dump(data, f)


def median_run(binary, args, cwd, runs, reset=None, codes=(0, 2)):
    """Median wall seconds and peak RSS of `runs` runs, each exiting with one of `codes`;
    CPU[("median",) + args] is the median CPU seconds."""
    times, rss, cpu = [], [], []
    for _ in range(runs):
        if reset:
            reset()
        t, m, code, _ = run(binary, args, cwd)
        if code not in codes:
            sys.exit(f"kmsconf {' '.join(args)} failed with {code} in {cwd}")
        times.append(t)
        rss.append(m)
        cpu.append(CPU[tuple(args)])
    CPU[("median", *args)] = statistics.median(cpu)
    return statistics.median(times), max(rss)


def scale(binary, base, sizes, runs, budget):
    """validate, fresh plan and no-change plan per size, against the budget; returns whether all fit."""
    print("| hosts | validate, median | plan (fresh), median | plan (no change), median | CPU (user + sys): validate / fresh / no change | peak RSS | CPU per host / first size's: validate / fresh / no change |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    first = None
    fits = True
    for n in sizes:
        d = fleet(n, base)
        tv, rv = median_run(binary, ["validate"], d, runs)
        tp, rp = median_run(binary, ["plan"], d, runs)  # the first run creates the lab hosts
        _, _, code, _ = run(binary, ["apply", "--auto-approve"], d)
        if code != 0:
            sys.exit(f"kmsconf apply failed with {code} in {d}")
        # exit 0 with --detailed-exitcode: the plan after apply really has no changes
        tn, rn = median_run(binary, ["plan", "--detailed-exitcode"], d, runs, codes=(0,))
        rss = max(rv, rp, rn) / 1024
        cpu = [CPU[("median", *args)] for args in (["validate"], ["plan"], ["plan", "--detailed-exitcode"])]
        per = [c / n for c in cpu]
        first = first or per
        ratio = " / ".join(f"{b / a:.2f}" for a, b in zip(first, per))
        shown = " / ".join(f"{c:.2f} s" for c in cpu)
        print(f"| {n} | {tv*1000:.0f} ms | {tp*1000:.0f} ms | {tn*1000:.0f} ms | {shown} | {rss:.1f} MiB | {ratio} |")
        if n >= 10000:
            fits &= tv < budget.max_validate and max(tp, tn) < budget.max_plan and rss < budget.max_rss_mb
        shutil.rmtree(d)
    return fits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,100,1000")
    ap.add_argument("--latency-sizes", default="8,64,256")
    ap.add_argument("--scale-sizes", default="")
    ap.add_argument("--max-validate", type=float, default=1.0)
    ap.add_argument("--max-plan", type=float, default=3.0)
    ap.add_argument("--max-rss-mb", type=float, default=300.0)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "kmsconf"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "kmsconf")
    base = tempfile.mkdtemp(prefix="kmsconf-bench-")
    if a.scale_sizes:
        try:
            fits = scale(binary, base, [int(s) for s in a.scale_sizes.split(",")], a.runs, a)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        sys.exit(0 if fits else "over the 10,000-host budget")
    try:
        print("| hosts | plan (fresh), median | peak RSS | per host | apply | round trips per host: apply / levels | no-change plan round trips per host |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for n in map(int, a.sizes.split(",")):
            d = fleet(n, base)
            run(binary, ["plan"], d)  # creates the lab hosts
            pristine = {p: open(p).read() for p in lab_files(d)}

            def reset():
                for p, text in pristine.items():
                    with open(p, "w") as f:
                        f.write(text)

            t, rss = median_run(binary, ["plan"], d, a.runs)
            reset()
            before = round_trips(d)
            ta, _, code, out = run(binary, ["apply", "--auto-approve", "--json"], d)
            assert code == 0, out
            report = json.loads(out)
            levels = max(h["batches"] for h in report["hosts"])
            after = round_trips(d)
            per_host_apply = max(b - a_ for a_, b in zip(before, after))
            before = round_trips(d)
            run(binary, ["plan", "--detailed-exitcode"], d)
            nochange = set(b - a_ for a_, b in zip(before, round_trips(d)))
            print(f"| {n} | {t*1000:.0f} ms | {rss/1024:.1f} MiB | {t*1000/n:.2f} ms | {ta*1000:.0f} ms | {per_host_apply} (1 discovery + {levels} batches) / {levels} levels | {sorted(nochange)} |")
            shutil.rmtree(d)
        print()
        print("| hosts, 50 ms per round trip | plan --parallelism 8, median | ideal hosts/8 x 50 ms | serial hosts x 50 ms | speed-up over serial |")
        print("|---:|---:|---:|---:|---:|")
        for n in map(int, a.latency_sizes.split(",")):
            d = fleet(n, base)
            run(binary, ["plan"], d)
            set_latency(d, 50)
            t, _ = median_run(binary, ["plan", "--parallelism", "8"], d, a.runs)
            ideal = -(-n // 8) * 0.05
            serial = n * 0.05
            print(f"| {n} | {t*1000:.0f} ms | {ideal*1000:.0f} ms | {serial*1000:.0f} ms | {serial/t:.1f}x |")
            shutil.rmtree(d)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
