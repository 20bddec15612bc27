"""Measuring latency honestly: warm-up, repeated runs, percentiles, and the machine described.

Every benchmark result records :func:`describe_machine` so figures are only ever compared
within one machine and one run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from samrt.cpu import cpuinfo_value, simd_flags

__all__ = ["LatencyStats", "measure", "describe_machine", "machine_id", "result_path", "write_record", "resident_mb",
           "peak_rss_mb", "RESULTS_DIR"]

RESULTS_DIR = Path("benchmarks") / "results"  # relative to the working directory: run from the repository root
# identity of a machine description: what decides the speed of CPU code (the kernel release in
# ``platform`` tells sessions on otherwise identical-looking virtual machines apart)
_IDENTITY_KEYS = ("cpu", "cpu_simd", "cpu_count", "memory_gib", "platform", "gpu")


@dataclass(frozen=True, kw_only=True)
class LatencyStats:
    """Wall-clock latency over ``runs`` calls, in milliseconds."""

    runs: int
    p50_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float

    @classmethod
    def from_seconds(cls, seconds: list[float]) -> LatencyStats:
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        return cls(runs=int(ms.size), p50_ms=round(float(np.percentile(ms, 50)), 3),
                   p90_ms=round(float(np.percentile(ms, 90)), 3), min_ms=round(float(ms.min()), 3),
                   mean_ms=round(float(ms.mean()), 3))

    def to_dict(self) -> dict[str, float]:
        return {"runs": self.runs, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "min_ms": self.min_ms,
                "mean_ms": self.mean_ms}


def measure(function: Callable[[], object], *, repeat: int = 10, warmup: int = 2) -> LatencyStats:
    """Call ``function`` ``warmup`` times unmeasured, then ``repeat`` times measured."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return LatencyStats.from_seconds(times)


def describe_machine() -> dict[str, object]:
    """CPU model, core count, memory, OS, Python and library versions, and the GPU if any."""
    info: dict[str, object] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_simd": simd_flags(),  # int8 products in particular run several times faster with VNNI
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
    }
    versions = {}
    for name in ("numpy", "PIL", "onnxruntime", "torch", "transformers", "tensorrt"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except Exception:  # noqa: BLE001 - absence is information, not an error
            continue
    info["versions"] = versions
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def machine_id(machine: Mapping[str, object]) -> str:
    """A folder name for a :func:`describe_machine` description: the CPU model, its cores, its
    widest SIMD class (``amx``, ``avx512-vnni``, ``avx512``, ``avx2``, or ``simd-unrecorded``
    for descriptions older than the flags), the GPU if any, and 6 hex digits of a hash of the
    identity fields; e.g. ``intel-xeon-2c-amx-8cf581``."""
    cpu = re.sub(r"\(r\)|\(tm\)|processor|cpu @.*", "", str(machine.get("cpu") or "cpu").lower())
    slug = re.sub(r"[^a-z0-9]+", "-", cpu).strip("-") or "cpu"
    flags = machine.get("cpu_simd")
    if flags is None:
        simd = "simd-unrecorded"
    else:
        simd = next((name for name, flag in (("amx", "amx_int8"), ("avx512-vnni", "avx512_vnni"),
                                              ("avx512", "avx512f"), ("avx2", "avx2")) if flag in flags), "simd-base")
    gpu = machine.get("gpu")
    parts = [slug, f"{machine.get('cpu_count')}c", simd] + ([re.sub(r"[^a-z0-9]+", "-", str(gpu).lower())] if gpu else [])
    identity = json.dumps({key: machine.get(key) for key in _IDENTITY_KEYS}, sort_keys=True)
    return "-".join([*parts, hashlib.sha256(identity.encode()).hexdigest()[:6]])


def result_path(benchmark: str, machine: Mapping[str, object] | None = None) -> Path:
    """``benchmarks/results/<machine id>/<benchmark>.json`` for this machine (or ``machine``)."""
    return RESULTS_DIR / machine_id(machine or describe_machine()) / f"{benchmark}.json"


def write_record(path: Path, record: dict[str, object]) -> None:
    """Write a benchmark's ``record`` as indented JSON to ``path`` (folders created), with
    ``machine`` (:func:`describe_machine`) added after its other keys, and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, "machine": describe_machine()}, indent=2) + "\n")
    print(f"wrote {path}")


def _cpu_model() -> str:
    return cpuinfo_value("model name") or platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def resident_mb() -> float:
    """This process's resident set size in MiB (Linux /proc; NaN where unavailable)."""
    return _status_mb("VmRSS:")


def peak_rss_mb() -> float:
    """This process's peak resident set size so far in MiB (Linux /proc; NaN where unavailable)."""
    return _status_mb("VmHWM:")


def _status_mb(field: str) -> float:
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
