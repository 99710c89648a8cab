#!/usr/bin/env python3
"""qemu.qmp workloads for qmp-bench: one repetition of one workload per process.

Invoked by the bench as `driver.py --workload W --socket PATH --n N --subs S` (the same
arguments as the Rust client processes). Prints one JSON object on stdout with the same fields
as the Rust side's `Sample`: ops, wall_s, cpu_s (process CPU time, `time.process_time()`),
user_s/kernel_s (os.times(), clock ticks), p50_us/p99_us, peak_rss_kib (VmHWM), kib_per_conn, missed.
"""

import argparse
import asyncio
import json
import os
import resource
import sys
import time

from qemu.qmp import EventListener, QMPClient


def status_kib(field):
    """A field of /proc/self/status in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Timer:
    """Wall and process CPU time of a timed section."""

    def __init__(self):
        self.cpu = time.process_time()
        self.times = os.times()
        self.wall = time.perf_counter()

    def sample(self, ops, **extra):
        out = {
            "ops": ops,
            "wall_s": time.perf_counter() - self.wall,
            "cpu_s": time.process_time() - self.cpu,
        }
        now = os.times()
        out["user_s"] = now.user - self.times.user
        out["kernel_s"] = now.system - self.times.system
        out.update(extra)
        return out


async def connect(path):
    client = QMPClient("bench")
    await client.connect(path)
    return client


def percentile(sorted_ns, q):
    i = min(max(int(-(-len(sorted_ns) * q // 1)), 1), len(sorted_ns))
    return sorted_ns[i - 1] / 1e3


async def seq(a):
    c = await connect(a.socket)
    for _ in range(min(a.n // 10, 1000)):
        await c.execute("query-status")
    lat = []
    t = Timer()
    for _ in range(a.n):
        t0 = time.perf_counter_ns()
        await c.execute("query-status")
        lat.append(time.perf_counter_ns() - t0)
    out = t.sample(a.n)
    lat.sort()
    out["p50_us"] = percentile(lat, 0.50)
    out["p99_us"] = percentile(lat, 0.99)
    await c.disconnect()
    return out


async def pipe(a):
    c = await connect(a.socket)
    t = Timer()
    await asyncio.gather(*(c.execute("query-status") for _ in range(a.n)))
    out = t.sample(a.n, peak_rss_kib=status_kib("VmHWM"))
    await c.disconnect()
    return out


async def schema(a):
    c = await connect(a.socket)
    await c.execute("query-qmp-schema")
    t = Timer()
    for _ in range(a.n):
        s = await c.execute("query-qmp-schema")
        assert isinstance(s, list) and s
    out = t.sample(a.n)
    await c.disconnect()
    return out


async def consume(listener, n):
    seen = 0
    while seen < n:
        await listener.get()
        seen += 1


async def events(a):
    c = await connect(a.socket)
    # The client's own default listener is the first subscriber; add the others.
    listeners = [c.events]
    for _ in range(a.subs - 1):
        extra = EventListener()
        c.register_listener(extra)
        listeners.append(extra)
    t = Timer()
    tasks = [asyncio.create_task(consume(l, a.n)) for l in listeners]
    await c.execute("x-bench-events", {"count": a.n})
    await asyncio.gather(*tasks)
    out = t.sample(a.n)
    await c.disconnect()
    return out


async def qemu_events(a):
    c = await connect(a.socket)
    t = Timer()
    consumer = asyncio.create_task(consume(c.events, a.n))
    calls = []
    for _ in range(a.n // 2):
        calls.append(c.execute("stop"))
        calls.append(c.execute("cont"))
    await asyncio.gather(*calls)
    await consumer
    out = t.sample(a.n)
    await c.disconnect()
    return out


async def idle(a):
    conns = [await connect(a.socket)]
    await asyncio.sleep(0.05)
    before = status_kib("VmRSS")
    t = Timer()
    for _ in range(a.n):
        conns.append(await connect(a.socket))
    out = t.sample(a.n)
    await asyncio.sleep(0.2)
    out["kib_per_conn"] = (status_kib("VmRSS") - before) / a.n
    for c in conns:
        await c.disconnect()
    return out


WORKLOADS = {
    "seq": seq,
    "pipe": pipe,
    "schema": schema,
    "events": events,
    "qemu-events": qemu_events,
    "idle": idle,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--client", default="qemu.qmp")
    p.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    p.add_argument("--socket", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--subs", type=int, default=1)
    p.add_argument("--event-buffer", type=int)
    p.add_argument("--multi-thread", action="store_true")
    p.add_argument("--cpu", type=int)
    a = p.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = asyncio.run(WORKLOADS[a.workload](a))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
