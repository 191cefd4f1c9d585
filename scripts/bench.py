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
    ideal hosts / 8 x 50 ms and the serial hosts x 50 ms;
  * with a simulated Windows cost (--windows-sizes; --connect-ms for the SSH connection, --start-ms
    for starting powershell.exe, --request-ms per request), `apply` and a no-change `plan` wall
    time and connections per host, before and after issue 11:
      - after: `ssh://` hosts through a stand-in `ssh` (KMSCONF_SSH) that counts its connections,
        waits the connection cost and runs the host's `powershell.exe`, itself a stand-in that
        waits the start cost and execs `kmsconf lab agent` on the host's lab file, whose latency
        is the request cost: the real client, session and protocol;
      - before: one connection and one powershell.exe per round trip (lock, discovery, one per
        batch, unlock), as kmsconf made them until issue 11: `lab:` hosts whose every round trip
        costs connection + start + request; connections per host are the lab's round trips plus
        the lock's and the unlock's.
With --scale-sizes, for each size it measures `validate`, a fresh `plan` and a no-change `plan`
(median wall time and peak RSS), and prints each against the 10,000-host budget (validate
< 1 s, plan < 3 s, peak RSS < 300 MB) and the ratio to the first size: linear growth keeps
time per host flat. `--max-validate`, `--max-plan` and `--max-rss-mb` set the budget.
Prints Markdown tables; figures are medians of --runs runs (the Windows ones of one run).
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


def host_block(i, target=None):
    target = target or f"lab:lab/h{i:05d}.json"
    return f"""
[hosts.h{i:05d}]
target = "{target}"

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


def run(binary, args, cwd, extra_env=None):
    """Runs kmsconf; returns (seconds, peak RSS in KiB, exit code, stdout). The CPU seconds it
    used (user + system) are kept in CPU[tuple(args)], last run."""
    env = dict(os.environ, **KEYS, **(extra_env or {}))
    env.pop("KMSCONF_LOG", None)
    start = time.perf_counter()
    proc = subprocess.Popen([binary, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    CPU[tuple(args)] = usage.ru_utime + usage.ru_stime
    return elapsed, usage.ru_maxrss, os.waitstatus_to_exitcode(status), out.decode()


def fleet(n, base, ssh=False, name=None):
    d = os.path.join(base, name or f"fleet-{n}")
    os.makedirs(os.path.join(d, "packs", "office"), exist_ok=True)
    with open(os.path.join(d, "kmsconf.toml"), "w") as f:
        f.write("".join(host_block(i, f"ssh://h{i:05d}" if ssh else None) for i in range(n)))
    return d


# The stand-in `ssh`: skips the options up to `--`, records the destination, waits the connection
# cost, and runs the remote command with the stand-in powershell.exe first on PATH.
FAKE_SSH = """#!/bin/sh
while [ "$1" != "--" ]; do shift; done
dest="$2"
echo "$dest" >> "$BENCH_DIR/connections"
sleep "$BENCH_CONNECT"
BENCH_HOST="$dest" PATH="$BENCH_DIR/bin:$PATH" exec sh -c "$3"
"""

# The stand-in powershell.exe: waits the start cost, then is the host's agent.
FAKE_POWERSHELL = """#!/bin/sh
sleep "$BENCH_START"
exec "$BENCH_KMSCONF" lab agent "lab/$BENCH_HOST.json"
"""


def stand_ins(base, binary, connect_ms, start_ms):
    """Writes the stand-ins; returns the environment that uses them."""
    os.makedirs(os.path.join(base, "bin"), exist_ok=True)
    for name, text in [("ssh", FAKE_SSH), ("bin/powershell.exe", FAKE_POWERSHELL)]:
        path = os.path.join(base, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    return {
        "KMSCONF_SSH": os.path.join(base, "ssh"),
        "BENCH_DIR": base,
        "BENCH_CONNECT": str(connect_ms / 1000),
        "BENCH_START": str(start_ms / 1000),
        "BENCH_KMSCONF": binary,
    }


def connections(base, n):
    path = os.path.join(base, "connections")
    hosts = open(path).read().split() if os.path.exists(path) else []
    if os.path.exists(path):
        os.remove(path)
    return len(hosts) / n


def windows_after(binary, base, n, env, request_ms):
    """apply, then a no-change plan, of a fresh ssh:// fleet: (apply s, conns/host, plan s, conns/host)."""
    d = fleet(n, base, ssh=True, name=f"ssh-{n}")
    run(binary, ["plan"], d, env)  # creates the lab hosts
    set_latency(d, request_ms)
    connections(base, n)
    ta, _, code, out = run(binary, ["apply", "--auto-approve"], d, env)
    assert code == 0, out
    ca = connections(base, n)
    tp, _, code, out = run(binary, ["plan", "--detailed-exitcode"], d, env)
    assert code == 0, out
    cp = connections(base, n)
    shutil.rmtree(d)
    return ta, ca, tp, cp


def windows_before(binary, base, n, cost_ms):
    """The same with one connection per round trip: lab hosts whose round trip costs `cost_ms`."""
    d = fleet(n, base, name=f"before-{n}")
    run(binary, ["plan"], d)
    set_latency(d, cost_ms)
    start = round_trips(d)
    ta, _, code, out = run(binary, ["apply", "--auto-approve"], d)
    assert code == 0, out
    mid = round_trips(d)
    tp, _, code, out = run(binary, ["plan", "--detailed-exitcode"], d)
    assert code == 0, out
    end = round_trips(d)
    # the Windows path also connected once to lock and once to unlock
    ca = max(b - a_ for a_, b in zip(start, mid)) + 2
    cp = max(b - a_ for a_, b in zip(mid, end))
    shutil.rmtree(d)
    return ta, ca, tp, cp


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
    ap.add_argument("--windows-sizes", default="1,8,64")
    ap.add_argument("--connect-ms", type=int, default=300)
    ap.add_argument("--start-ms", type=int, default=800)
    ap.add_argument("--request-ms", type=int, default=20)
    ap.add_argument("--only-windows", action="store_true", help="skip the lab tables")
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
        if not a.only_windows:
            lab_tables(a, binary, base)
        windows_table(a, binary, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def windows_table(a, binary, base):
    env = stand_ins(base, binary, a.connect_ms, a.start_ms)
    cost = a.connect_ms + a.start_ms + a.request_ms
    print()
    print(f"| hosts ({a.connect_ms} ms connection, {a.start_ms} ms PowerShell start, {a.request_ms} ms per request; --parallelism 8) | apply before | apply after | connections per host, apply: before / after | no-change plan before | no-change plan after | connections per host, plan: before / after |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in map(int, a.windows_sizes.split(",")):
        ba, bca, bp, bcp = windows_before(binary, base, n, cost)
        aa, aca, ap_, acp = windows_after(binary, base, n, env, a.request_ms)
        print(f"| {n} | {ba:.1f} s | {aa:.1f} s | {bca:g} / {aca:g} | {bp:.1f} s | {ap_:.1f} s | {bcp:g} / {acp:g} |")


def lab_tables(a, binary, base):
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


if __name__ == "__main__":
    main()
