"""Memory soak at a reduced count (the full 1,000 requests: benchmarks/soak_memory.py)."""

from __future__ import annotations

import pytest
from samrt import SamRuntime

from samexport.soak import soak


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    from samexport.checkpoints import random_model
    from samexport.config import preset
    from samexport.export import export_model

    engine = export_model(random_model(preset("tiny"), seed=5), tmp_path_factory.mktemp("soak") / "tiny",
                          source="random:tiny", source_sha256=None)
    return SamRuntime.load(engine, backend="onnxruntime", warmup=True)


def test_resident_memory_plateaus(runtime):
    """No leak: the last third of the requests peaks no higher than the middle third (+50 MB).

    Issue 8's stricter bar (< 50 MB above the warm-up peak) is *not* met yet: RSS steps up by a
    few hundred MB over the first ~30 requests, then stays flat (heap fragmentation across the
    worker threads, not a per-request leak). benchmarks/soak_memory.py records the full curve.
    """
    result = soak(runtime, requests=60, warmup=14, max_prompts=32)
    rss = result["rss_mb"]
    assert len(rss) == 60 and result["rss_warmup_peak_mb"] > 0
    assert max(rss[40:]) < max(rss[20:40]) + 50, " ".join(f"{v:.0f}" for v in rss)
