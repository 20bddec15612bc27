"""samrt.cpu: the CPU's int8 dot-product instructions, read from /proc/cpuinfo."""

from __future__ import annotations

import pytest
import samrt.cpu as cpu

X86_AVX2 = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 fma avx512f\n\nprocessor\t: 1\n"
X86_VNNI = "processor\t: 0\nflags\t\t: fpu avx2 fma avx512f avx512_vnni\n"
X86_AMX = "processor\t: 0\nflags\t\t: fpu avx2 amx_int8 amx_tile\n"
ARM_DOTPROD = "processor\t: 0\nFeatures\t: fp asimd evtstrm asimddp\n"
ARM_PLAIN = "processor\t: 0\nFeatures\t: fp asimd evtstrm\n"


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    def write(text: str, machine: str) -> None:
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        monkeypatch.setattr(cpu, "CPUINFO", str(path))
        monkeypatch.setattr(cpu.platform, "machine", lambda: machine)
    return write


@pytest.mark.parametrize("text, machine, expected", [
    (X86_AVX2, "x86_64", False), (X86_VNNI, "x86_64", True), (X86_AMX, "AMD64", True),
    (ARM_DOTPROD, "aarch64", True), (ARM_PLAIN, "aarch64", False), (X86_VNNI, "riscv64", None),
    ("processor\t: 0\n", "x86_64", None),
])
def test_int8_dot_products_from_the_flags(cpuinfo, text, machine, expected):
    cpuinfo(text, machine)
    assert cpu.int8_dot_products() is expected


def test_simd_flags_keep_their_order_and_unknown_cpus_have_none(cpuinfo, tmp_path, monkeypatch):
    cpuinfo(X86_VNNI, "x86_64")
    assert cpu.simd_flags() == ["avx2", "fma", "avx512f", "avx512_vnni"]
    cpuinfo(X86_AVX2, "x86_64")
    assert cpu.cpuinfo_value("model name") == "Some CPU" and cpu.cpuinfo_value("Hardware") is None
    monkeypatch.setattr(cpu, "CPUINFO", str(tmp_path / "absent"))
    assert cpu.cpu_flags() is None and cpu.simd_flags() == [] and cpu.int8_dot_products() is None
