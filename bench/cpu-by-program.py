#!/usr/bin/env python3
"""CPU used by each program on the machine over a window, in CPUs (1.0 = one core busy).

Run it beside a benchmark to see which program a pair's CPU goes to, e.g. during the matrix's
keep-alive row (12 s of set-up, then a 20 s run):

    bench/cpu-by-program.py --after 12 --for 8 &
    bin/bench-matrix -pairs zt1 -metrics keep-alive -runs 1 -duration 20s -startup-runs 1

Processes are matched by pid across the window and summed by name (utime + stime of all
their threads). Processes that start or exit inside the window are left out, and so is
kernel work that the kernel charges to no process (kernel threads are listed by their own
names). Without CONFIG_IRQ_TIME_ACCOUNTING softirq work counts for the task it interrupted.
"""
import argparse
import collections
import os
import time


def snapshot():
    """pid -> (name, clock ticks of CPU time)."""
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[pid] = (name, int(fields[11]) + int(fields[12]))
    return procs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--after", type=float, default=0, help="seconds to wait before the window")
    ap.add_argument("--for", dest="window", type=float, default=5, help="length of the window (s)")
    ap.add_argument("--min", type=float, default=0.01, help="leave out programs below this many CPUs")
    args = ap.parse_args()
    time.sleep(args.after)
    before, t0 = snapshot(), time.monotonic()
    time.sleep(args.window)
    after, t1 = snapshot(), time.monotonic()
    tick = os.sysconf("SC_CLK_TCK")
    by_name = collections.Counter()
    for pid, (name, ticks) in after.items():
        if pid in before:
            by_name[name] += ticks - before[pid][1]
    total = 0.0
    for name, ticks in by_name.most_common():
        cpus = ticks / tick / (t1 - t0)
        if cpus >= args.min:
            print(f"{name:24s} {cpus:6.3f}")
            total += cpus
    print(f"{'total':24s} {total:6.3f}")


if __name__ == "__main__":
    main()
