"""Memory soak at a reduced count, in a fresh process (full count: benchmarks/soak_memory.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from samrt.memory import limit_heap_fragmentation


def test_heap_limits_apply_on_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        assert limit_heap_fragmentation() is False
    else:
        assert limit_heap_fragmentation() is True
        assert limit_heap_fragmentation() is True  # idempotent
        from PIL import Image
        from samrt.memory import PILLOW_BLOCK_BYTES, PILLOW_BLOCKS

        # Pillow keeps freed image blocks, all of one small size, for reuse instead of mapping
        # them afresh.
        assert Image.core.get_blocks_max() >= PILLOW_BLOCKS
        assert Image.core.get_block_size() <= PILLOW_BLOCK_BYTES


def test_resident_memory_stays_within_50_mb_after_warmup(random_tiny_engine, tmp_path):
    """Issue 8's bar: after warm-up, peak RSS grows by less than 50 MB, in a fresh process (RSS
    of the test process after the rest of the suite says nothing about the runtime)."""
    engine = random_tiny_engine
    out = tmp_path / "soak.json"
    subprocess.run([sys.executable, "-m", "samexport.soak", "--engine", str(engine), "--requests", "60",
                    "--warmup", "14", "--max-prompts", "32", "--out", str(out)], check=True, timeout=600)
    result = json.loads(out.read_text())
    rss = result["rss_mb"]
    assert len(rss) == 60 and result["rss_warmup_peak_mb"] > 0
    assert result["growth_mb"] < 50, " ".join(f"{v:.0f}" for v in rss)
