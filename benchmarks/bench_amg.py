"""Automatic mask generation end to end, ViT-B random weights, one real photograph, 32x32 points:
samrt ``SamRuntime.generate`` (onnxruntime CPU) vs segment_anything's ``SamAutomaticMaskGenerator``
vs transformers' ``pipeline("mask-generation")``, same machine, same run, same weights.

Random weights keep no mask at the default thresholds, which would skip most of the work, so
all three run with pred_iou_thresh=0 and stability_score_thresh=0: every mask goes through
stability scoring, boxes, RLE and NMS.

    python benchmarks/bench_amg.py [--engine engines/vit_b] [--out benchmarks/results/<machine id>/amg_vit_b.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from samexport.checkpoints.naming import hf_to_meta
from samexport.checkpoints.random_weights import random_model
from samexport.config import preset
from samexport.export import export_model
from samexport.timing import describe_machine, result_path

IMAGE = Path(__file__).resolve().parent.parent / "docs" / "astronaut.jpg"
OPEN = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0)


def _timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", type=Path, default=None, help="existing random:vit_b engine directory")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/amg_vit_b.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("amg_vit_b")
    from samrt import SamRuntime

    model = random_model(preset("vit_b"), seed=0)
    work = Path(tempfile.mkdtemp())
    engine = args.engine or export_model(model, work / "vit_b", source="random:vit_b", source_sha256=None)
    photo = np.asarray(Image.open(IMAGE).convert("RGB"))
    kwargs = dict(points_per_side=args.points_per_side, points_per_batch=64, **OPEN)
    results = {}

    runtime = SamRuntime.load(engine, backend="onnxruntime")
    ours, seconds = _timed(lambda: runtime.generate(photo, **kwargs))
    results["samrt_onnxruntime_cpu"] = {"seconds": round(seconds, 2), "masks": len(ours)}
    print(results)

    import segment_anything as sa

    meta = sa.sam_model_registry["vit_b"]()
    meta.load_state_dict(hf_to_meta(model.state_dict()))
    meta.eval()
    with torch.inference_mode():
        ref, seconds = _timed(lambda: sa.SamAutomaticMaskGenerator(meta, **kwargs).generate(photo))
    results["segment_anything"] = {"seconds": round(seconds, 2), "masks": len(ref)}
    print(results)

    import transformers

    model.save_pretrained(work / "hf")
    hf_model = transformers.SamModel.from_pretrained(str(work / "hf")).eval()
    generator = transformers.pipeline("mask-generation", model=hf_model,
                                      image_processor=transformers.SamImageProcessor(), device="cpu")
    with torch.inference_mode():
        out, seconds = _timed(lambda: generator(Image.fromarray(photo), points_per_batch=64,
                                                pred_iou_thresh=0.0, stability_score_thresh=0.0))
    results["transformers_pipeline"] = {"seconds": round(seconds, 2), "masks": len(out["masks"])}
    ours_s = results["samrt_onnxruntime_cpu"]["seconds"]
    summary = {name: round(r["seconds"] / ours_s, 2) for name, r in results.items() if not name.startswith("samrt")}
    record = {"benchmark": "amg_vit_b_random", "image": f"docs/astronaut.jpg {photo.shape[1]}x{photo.shape[0]}",
              "points_per_side": args.points_per_side, "thresholds": OPEN, "machine": describe_machine(),
              "results": results, "speedup_of_samrt": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(json.dumps(record["results"]), json.dumps(summary))


if __name__ == "__main__":
    main()
