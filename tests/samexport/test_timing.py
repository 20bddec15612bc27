"""samexport.timing: the machine description and the benchmark record writer."""

from __future__ import annotations

import json
import os

from samexport.timing import describe_machine, measure, write_record


def test_machine_names_cores_and_the_vector_extensions_present():
    machine = describe_machine()
    assert machine["cpu_count"] == os.cpu_count()
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        flags = next(line for line in handle if line.startswith("flags")).split(":", 1)[1].split()
    assert all(flag in flags for flag in machine["cpu_simd"])
    for flag in ("avx2", "avx512f", "avx512_vnni"):
        assert (flag in machine["cpu_simd"]) == (flag in flags)


def test_record_is_written_with_the_machine_after_its_own_keys(tmp_path, capsys):
    path = tmp_path / "deep" / "result.json"
    write_record(path, {"benchmark": "x", "results": [1, 2]})
    written = json.loads(path.read_text())
    assert list(written) == ["benchmark", "results", "machine"]
    assert written["machine"]["cpu_simd"] == describe_machine()["cpu_simd"]
    assert str(path) in capsys.readouterr().out


def test_measure_counts_only_the_repeated_calls():
    calls = []
    stats = measure(lambda: calls.append(1), repeat=4, warmup=3)
    assert len(calls) == 7 and stats.runs == 4
    assert 0 <= stats.min_ms <= stats.p50_ms <= stats.p90_ms
