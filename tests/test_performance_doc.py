"""docs/performance.md's tables are generated from benchmarks/results/ and must be up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from samexport.timing import machine_id

ROOT = Path(__file__).resolve().parents[1]


def _tables():
    spec = importlib.util.spec_from_file_location("benchmark_tables", ROOT / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_performance_tables_match_the_result_files():
    assert _tables().main(["--check"]) == 0, "run: python benchmarks/tables.py"


def test_tabled_results_all_appear_with_their_machine():
    tables = _tables()
    text = tables.generated()
    for pattern in ("bench_*.json", "processing.json", "amg_*.json", "int8_builds_*.json", "decoder_workers_*.json",
                    "soak_*.json"):
        found = list(tables._records(pattern))
        assert found, pattern
        for name, record in found:
            assert name.split("/", 2)[-1] in text and "machine" in record, name


@pytest.mark.parametrize("machine", [{"cpu": "Intel(R) Xeon(R) Processor", "cpu_simd": ["avx2", "amx_int8"],
                                      "cpu_count": 2}, {"cpu": "AMD EPYC", "cpu_count": 2}])
def test_machine_ids_are_folder_names(machine):
    ident = machine_id(machine)
    assert ident == machine_id(dict(machine)) and "/" not in ident and " " not in ident
    assert ("amx" in ident) == ("cpu_simd" in machine)
