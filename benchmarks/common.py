"""Shared pieces of the benchmark scripts: workloads, timing, machine facts, and writing
one section of BENCHMARKS.md without touching the others."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def patches(n, side=28, seed=0):
    """``n`` uint8 patches ``side x side`` cut at random places from scikit-image's bundled
    camera() and astronaut() (grayscale), alternating between the two: the "patches" set
    of :mod:`ssimref.datasets` (a writable copy)."""
    from ssimref.datasets import load
    return np.array(load("patches", n=n, side=side, seed=seed).images)


def timed(fn, repeat=5, warmup=1):
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times; return the seconds of
    each timed run."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(times):
    return min(times), statistics.median(times), max(times)


def versions(*packages):
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine():
    """CPU model, logical cores and load average at the time of the run."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"Model name:\s*(.+)", out).group(1).strip()
    except (OSError, subprocess.CalledProcessError, AttributeError):
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{model}, {os.cpu_count()} logical cores, load average {load} at the start"


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD):
    """Replace the section between ``<!-- name -->`` markers (append it when missing) and
    write the file atomically."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
