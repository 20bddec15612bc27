"""torch -> ONNX for both graphs, checked and verified, into an engine directory.

Exporter: torch's current default, the dynamo-based ``torch.onnx.export(..., dynamo=True)``
with ``torch.export.Dim`` dynamic axes. Opset 20: LayerNormalization (>= 17) and Gelu (>= 20) stay single
nodes, which onnxruntime runs in one pass (the erf decomposition costs 5 passes over the
largest decoder tensor) and TensorRT 10 imports (it reads opsets 9 to 20).
Every graph is checked with ``onnx.checker`` (full_check) right after export and then run
under onnxruntime against the reference at shapes other than the traced ones; an export that
misses the tolerance raises :class:`ExportVerificationError` and leaves no engine directory.
The directory is written to a temporary sibling and renamed into place at the end, so an
interrupted export never leaves a directory that looks valid.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from samrt import spec
from samrt.engine_manifest import EngineManifest, GraphRecord, ModelSource, Preprocessing
from samrt.errors import SamError
from samrt.manifest import artifacts_of, write_manifest

from . import __version__
from .graphs import DecoderGraph, EncoderGraph
from .interrupts import raise_if_requested
from .modeling.sam import SamModel
from .staging import staged_directory

OPSET = 20
TRACE_PROMPTS, TRACE_POINTS = 2, 3
VERIFY_SHAPES = ((1, 1), (3, 2), (17, 5))
EXTERNAL_DATA_THRESHOLD = 1_800_000_000  # bytes of weights; protobuf's hard limit is 2 GiB


class ExportVerificationError(SamError):
    """An exported graph does not reproduce the reference within tolerance."""


@dataclass(frozen=True, kw_only=True)
class Tolerances:
    embeddings: float = 1e-3
    iou_scores: float = 1e-4
    low_res_masks: float = 1e-3


def _dim(name: str, max_value: int) -> Any:
    return torch.export.Dim(name, min=1, max=max_value)


def export_encoder(model: SamModel, path: Path) -> None:
    cfg = model.config.vision_config
    graph = EncoderGraph(model).eval()
    # Batch 2, not 1: torch.export specialises size-1 axes.
    example = torch.zeros(2, cfg.num_channels, cfg.image_size, cfg.image_size)
    batch = _dim("batch", 64)
    _export(graph, (example,), path, ["pixel_values"], ["image_embeddings"], {"pixel_values": {0: batch}},
            external=_weight_bytes(graph) > EXTERNAL_DATA_THRESHOLD)


def export_decoder(model: SamModel, path: Path) -> None:
    c = model.config.prompt_encoder_config
    g = c.image_embedding_size
    graph = DecoderGraph(model).eval()
    n, p = TRACE_PROMPTS, TRACE_POINTS
    example = (
        torch.randn(1, c.hidden_size, g, g),
        torch.rand(n, p, 2) * c.image_size,
        torch.ones(n, p, dtype=torch.int32),
        torch.zeros(n, 1, 4 * g, 4 * g),
        torch.zeros(n),
    )
    prompts, points = _dim("num_prompts", 4096), _dim("num_points", 1024)
    names = [t.name for t in spec.decoder_inputs()]
    dynamic = {
        "image_embeddings": None,
        "input_points": {0: prompts, 1: points},
        "input_labels": {0: prompts, 1: points},
        "mask_input": {0: prompts},
        "has_mask_input": {0: prompts},
    }
    _export(graph, example, path, names, [t.name for t in spec.decoder_outputs()], dynamic, external=False)


def _weight_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _export(module, args, path: Path, inputs, outputs, dynamic_shapes, *, external: bool) -> None:
    import onnx

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, args, dynamo=True, opset_version=OPSET, input_names=inputs, output_names=outputs,
            dynamic_shapes=dynamic_shapes, optimize=True, verbose=False,
        )
    program.save(str(path), external_data=external)
    # full_check runs shape inference too; the path form handles external data.
    onnx.checker.check_model(str(path), full_check=True)


# -- verification ---------------------------------------------------------------------------
def verify_graphs(model: SamModel, directory: Path, tolerances: Tolerances, *, seed: int = 0) -> dict[str, Any]:
    """Run both ONNX graphs under onnxruntime-CPU against the reference at untraced shapes."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    enc = ort.InferenceSession(str(directory / spec.ENCODER_ONNX), options, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(directory / spec.DECODER_ONNX), options, providers=["CPUExecutionProvider"])
    cfg = model.config
    size = cfg.vision_config.image_size
    pixels = rng.normal(size=(1, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        ref_emb = model.vision_encoder(torch.from_numpy(pixels)).numpy()
    emb = enc.run(None, {"pixel_values": pixels})[0]
    report: dict[str, Any] = {"embeddings_max_abs": float(np.abs(emb - ref_emb).max()), "decoder": []}
    if not report["embeddings_max_abs"] <= tolerances.embeddings:
        raise ExportVerificationError(
            f"encoder: max abs error {report['embeddings_max_abs']:.3g} > {tolerances.embeddings}"
        )
    graph = DecoderGraph(model).eval()
    g = cfg.prompt_encoder_config.image_embedding_size
    for n, p in VERIFY_SHAPES:
        for with_box, with_mask in ((False, False), (True, False), (True, True)):
            feeds = _decoder_feeds(rng, ref_emb, n, p, size, 4 * g, with_box=with_box, with_mask=with_mask)
            with torch.no_grad():
                ref_iou, ref_masks = (t.numpy() for t in graph(*(torch.from_numpy(v) for v in feeds.values())))
            iou, masks = dec.run(None, feeds)
            row = {
                "num_prompts": n, "num_points": feeds["input_points"].shape[1], "box": with_box, "mask_input": with_mask,
                "iou_max_abs": float(np.abs(iou - ref_iou).max()),
                "masks_max_abs": float(np.abs(masks - ref_masks).max()),
                "mask_iou_min": float(_min_mask_iou(masks > 0, ref_masks > 0)),
            }
            report["decoder"].append(row)
            if row["iou_max_abs"] > tolerances.iou_scores or row["masks_max_abs"] > tolerances.low_res_masks:
                raise ExportVerificationError(f"decoder misses the tolerance at {row}")
    return report


def _decoder_feeds(rng, emb, n, p, size, mask_size, *, with_box, with_mask) -> dict[str, np.ndarray]:
    points = (rng.random((n, p, 2)) * size).astype(np.float32)
    labels = rng.choice([spec.LABEL_FOREGROUND, spec.LABEL_BACKGROUND, spec.LABEL_IGNORED_PAD],
                        size=(n, p)).astype(np.int32)
    labels[:, 0] = spec.LABEL_FOREGROUND
    if with_box:
        corner = rng.random((n, 2, 2)) * size
        corner.sort(axis=1)
        points = np.concatenate([points, corner.astype(np.float32)], axis=1)
        labels = np.concatenate([labels, np.tile(np.array([[spec.LABEL_BOX_TOP_LEFT, spec.LABEL_BOX_BOTTOM_RIGHT]], np.int32), (n, 1))], axis=1)
    else:
        points = np.concatenate([points, np.zeros((n, 1, 2), np.float32)], axis=1)
        labels = np.concatenate([labels, np.full((n, 1), spec.LABEL_NOT_A_POINT, np.int32)], axis=1)
    return {
        "image_embeddings": emb[:1],
        "input_points": points,
        "input_labels": labels,
        "mask_input": (rng.normal(size=(n, 1, mask_size, mask_size)) * 3).astype(np.float32),
        "has_mask_input": np.full((n,), 1.0 if with_mask else 0.0, np.float32),
    }


def _min_mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = (a & b).reshape(a.shape[0] * a.shape[1], -1).sum(1)
    union = (a | b).reshape(a.shape[0] * a.shape[1], -1).sum(1)
    iou = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return float(iou.min())


# -- the engine directory -------------------------------------------------------------------
def export_model(
    model: SamModel,
    out_dir: str | Path,
    *,
    source: str,
    source_sha256: str | None,
    tolerances: Tolerances | None = None,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Export, check and verify both graphs into ``out_dir``.

    ``out_dir`` must not exist, be empty, or (with ``overwrite=True``) be an engine directory
    samexport wrote, which is then replaced atomically; anything else raises
    :class:`samrt.errors.OutputError` before any work (see :mod:`samexport.staging`). ``source``,
    where it names a file or directory, may not overlap ``out_dir``."""
    import onnx
    import onnxruntime

    def say(message: str) -> None:
        raise_if_requested()  # a Ctrl-C the exporter swallowed stops us at the next step
        if progress is not None:
            progress(message)

    out_dir = Path(out_dir)
    with staged_directory(out_dir, overwrite=overwrite, sources=[source]) as staging:
        model = model.eval()
        say("exporting the image encoder")
        export_encoder(model, staging / spec.ENCODER_ONNX)
        say("exporting the prompt decoder")
        export_decoder(model, staging / spec.DECODER_ONNX)
        say("verifying both graphs with onnxruntime")
        verification = verify_graphs(model, staging, tolerances or Tolerances())
        cfg = model.config
        grid = cfg.prompt_encoder_config.image_embedding_size
        manifest = EngineManifest(
            name=out_dir.name,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            samexport_version=__version__,
            model=ModelSource(source=source, sha256=source_sha256, config=cfg.to_dict()),
            preprocessing=Preprocessing(image_size=cfg.vision_config.image_size, mask_size=4 * grid),
            graphs={
                "encoder": GraphRecord(file=spec.ENCODER_ONNX, opset=OPSET,
                                       inputs=spec.encoder_inputs(size=cfg.vision_config.image_size),
                                       outputs=spec.encoder_outputs(cfg.vision_config.output_channels, grid)),
                "decoder": GraphRecord(file=spec.DECODER_ONNX, opset=OPSET,
                                       inputs=spec.decoder_inputs(cfg.prompt_encoder_config.hidden_size, grid),
                                       outputs=spec.decoder_outputs(cfg.mask_decoder_config.num_multimask_outputs + 1,
                                                                    grid)),
            },
            versions={"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
            artifacts=artifacts_of(staging),
            verification=verification,
        )
        write_manifest(staging, manifest)
    return out_dir
