"""What the CPU offers the int8 kernels: Linux's /proc/cpuinfo, read without extra dependencies.

onnxruntime's int8 products (``DynamicQuantizeMatMul``, ``MatMulIntegerToFloat``) are fast only
with int8 dot-product instructions: VNNI (``avx512_vnni``, ``avx_vnni``) or AMX (``amx_int8``) on
x86, the dot-product extensions (``asimddp``, ``i8mm``) on Arm. Without them an int8 product
takes about half the time of FP32 (measured: 0.46-0.50x on an AVX2 CPU), and the default int8
engines ``samexport build`` writes (two or three int8 products per weight MatMul) run slower than FP32.
"""

from __future__ import annotations

import platform

__all__ = ["SIMD_FLAGS", "cpu_flags", "cpuinfo_value", "int8_dot_products", "simd_flags"]

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8",
              "asimddp", "i8mm")
_X86_INT8 = ("avx512_vnni", "avx_vnni", "amx_int8")
_ARM_INT8 = ("asimddp", "i8mm")
CPUINFO = "/proc/cpuinfo"


def cpuinfo_value(*fields: str) -> str | None:
    """The value of the first /proc/cpuinfo line whose key is one of ``fields`` (the first
    processor's, stripped); None where there is no such line or no /proc/cpuinfo."""
    try:
        with open(CPUINFO, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in fields:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str] | None:
    """The first processor's feature flags (x86 ``flags``, Arm ``Features``); None where unknown
    (no /proc/cpuinfo, or no such line)."""
    value = cpuinfo_value("flags", "Features")
    return None if value is None else set(value.split())


def simd_flags() -> list[str]:
    """Those of :data:`SIMD_FLAGS` the CPU has, in that order ([] where unknown)."""
    present = cpu_flags() or set()
    return [flag for flag in SIMD_FLAGS if flag in present]


def int8_dot_products() -> bool | None:
    """True: the CPU has int8 dot-product instructions; False: its flags are known and it has none;
    None: unknown (no flags, or an architecture this does not know)."""
    flags = cpu_flags()
    if flags is None:
        return None
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "i386"):
        return any(flag in flags for flag in _X86_INT8)
    if machine in ("aarch64", "arm64"):
        return any(flag in flags for flag in _ARM_INT8)
    return None
