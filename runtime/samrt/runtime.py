"""``SamRuntime``: load an engine directory, embed images, predict masks. Torch-free.

Threading: one ``SamRuntime`` may be shared by threads; onnxruntime sessions are re-entrant,
the TensorRT runner serialises calls with a lock, and the runtime keeps no per-call state.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import cpu, spec
from .backends import Runner, check_runner, load_runners, select_backend
from .checks import check_int
from .engine_manifest import EngineManifest
from .errors import InferenceError, InvalidInputError, ManifestError, PerformanceWarning
from .generate import GenerateSettings, generate_masks
from .images import max_image_pixels
from .manifest import read_manifest
from .memory import THRESHOLD_BYTES
from .memory import limit_heap_fragmentation as fix_heap_thresholds
from .processing import SamProcessor, finite_array
from .prompts import decoder_prompts
from .upscale import binarize_masks, upscale_masks

__all__ = ["SamRuntime", "ImageEmbedding", "Prediction", "PREDICT_CHUNK", "MAX_MASK_LOGIT"]

DEFAULT_MAX_PROMPTS = 1024
PREDICT_CHUNK = 16  # objects decoded and upscaled at a time in one predict call (~70 MB of scratch on ViT-B)
MAX_MASK_LOGIT = 1e5  # |mask_input| bound: low-res logits are tens; 1e39 overflows float32 in the graph


@dataclass(frozen=True)
class ImageEmbedding:
    """``embeddings`` float32 [1, C, 64, 64]; sizes as (height, width): ``original_size`` of the
    image, ``reshaped_input_size`` after the resize to the longest edge (at most the engine's
    image size). Checked on construction (InvalidInputError naming the field): an embedding
    from a client or a cache is not trusted."""

    embeddings: np.ndarray
    original_size: tuple[int, int]
    reshaped_input_size: tuple[int, int]

    def __post_init__(self) -> None:
        if not isinstance(self.embeddings, np.ndarray) or self.embeddings.dtype != np.float32 \
                or self.embeddings.ndim != 4 or self.embeddings.shape[0] != 1:
            found = (f"{self.embeddings.dtype} array of shape {self.embeddings.shape}"
                     if isinstance(self.embeddings, np.ndarray) else type(self.embeddings).__name__)
            raise InvalidInputError("embeddings", found, "a float32 array [1, C, H, W] from embed()")
        for field in ("original_size", "reshaped_input_size"):
            value = getattr(self, field)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise InvalidInputError(field, value, "(height, width), two integers >= 1")
            sizes = tuple(check_int(field, side, low=1, high=1 << 20) for side in value)
            object.__setattr__(self, field, sizes)
        height, width = self.original_size
        limit = 2 * max_image_pixels()
        if limit and height * width > limit:
            raise InvalidInputError("original_size", self.original_size,
                                    f"at most {limit} pixels (Pillow's decompression-bomb limit, as for images)")


@dataclass(frozen=True)
class Prediction:
    """``masks`` bool [N, M, H, W] at the original size (float32 logits with
    ``return_logits=True``); ``iou_scores`` float32 [N, M]; ``low_res_logits`` float32
    [N, M, 256, 256]. M is 3 with ``multimask_output`` and 1 otherwise."""

    masks: np.ndarray
    iou_scores: np.ndarray
    low_res_logits: np.ndarray


class SamRuntime:
    """Serve an engine directory written by ``samexport export`` / ``build``."""

    def __init__(self, *, directory: Path, manifest: EngineManifest, encoder: Runner, decoder: Runner, backend: str,
                 max_prompts: int = DEFAULT_MAX_PROMPTS) -> None:
        self.directory = directory
        self.manifest = manifest
        self.encoder = check_runner(encoder)
        self.decoder = check_runner(decoder)
        self.backend = backend
        self.max_prompts = check_int("max_prompts", max_prompts, low=1)
        self._warm = False
        pre = manifest.preprocessing
        self.image_size = pre.image_size
        self.mask_size = pre.mask_size
        self.embedding_shape = manifest.graphs["decoder"].inputs[0].shape
        self.processor = SamProcessor(
            size={"longest_edge": self.image_size},
            pad_size={"height": self.image_size, "width": self.image_size},
            image_mean=list(pre.image_mean), image_std=list(pre.image_std), rescale_factor=pre.rescale_factor,
        )

    @classmethod
    def load(cls, directory: str | Path, *, backend: str = "auto", providers: list[str] | None = None,
             warmup: bool = False, limit_heap_fragmentation: bool | int = True,
             decoder_workers: int | None = None, max_prompts: int = 1024) -> SamRuntime:
        """Verify the manifest and artefact hashes, then load the graphs (and run ``warmup()``
        when ``warmup`` is True; ``ready()`` stays False until it has run).

        limit_heap_fragmentation: fix glibc's malloc thresholds so resident memory stays flat
        over a long-lived process (``samrt.memory``; process-wide, glibc only). True: at 1 MiB;
        an int: at that many bytes (faster, less flat: see ``samrt.memory``); False: leave
        glibc alone.

        backend: ``"auto"`` (TensorRT engines when present and TensorRT is importable, else
        an engine directory's OpenVINO models when present and OpenVINO is importable, else
        onnxruntime), ``"onnxruntime"``, ``"tensorrt"`` or ``"openvino"`` (the directory's
        OpenVINO models at their recorded precision, or its ONNX graphs at fp32; the precision is
        read back from the compiled model).

        decoder_workers: threads a ``predict`` of several prompts shares its prompts over on
        onnxruntime's CPU provider (one prompt per thread at a time; see
        ``samrt.backends.onnxruntime.decoder_row_workers``). None: the usable cores, at most 8;
        1: prompts one after another (e.g. in a service that already runs a request per core).
        GPU providers and TensorRT run a batch at once and ignore it.

        max_prompts: the most objects one ``predict`` call takes (InvalidInputError beyond it).
        Its result holds ~0.8 MB of low-res logits per object besides the masks, and the work
        runs in chunks of ``PREDICT_CHUNK`` objects, so memory stays at the result plus a constant.
        """
        check_int("max_prompts", max_prompts, low=1)
        if decoder_workers is not None:
            check_int("decoder_workers", decoder_workers, low=1)
        directory = Path(directory)
        manifest = read_manifest(directory)
        chosen = select_backend(backend, tensorrt_plans=manifest.tensorrt, openvino_models=manifest.openvino)
        if limit_heap_fragmentation is not False:
            threshold = THRESHOLD_BYTES if limit_heap_fragmentation is True else limit_heap_fragmentation
            fix_heap_thresholds(check_int("limit_heap_fragmentation", threshold, low=1))
        encoder, decoder = load_runners(chosen, directory, graph_files=manifest.graph_files(),
                                        tensorrt_plans=manifest.tensorrt, openvino_models=manifest.openvino,
                                        providers=providers,
                                        decoder_workers=decoder_workers)
        files = (manifest.tensorrt.engines if chosen == "tensorrt" else
                 manifest.openvino.models if chosen == "openvino" and manifest.openvino is not None else
                 manifest.graph_files())
        _check_contract(directory, files, encoder, decoder)
        runtime = cls(directory=directory, manifest=manifest, encoder=encoder, decoder=decoder, backend=chosen,
                      max_prompts=max_prompts)
        if manifest.precision == "int8" and encoder.describe()["device"] == "cpu":
            _warn_without_int8_kernels(directory, manifest)
        return runtime.warmup() if warmup else runtime

    # -- health ----------------------------------------------------------------------------------
    def warmup(self) -> SamRuntime:
        """Run each graph once on a blank image, with one prompt and (where the decoder shares
        a batch over threads) with one prompt per thread: first calls allocate the backends'
        memory arenas and are several times slower. Returns self; ``ready()`` is True
        afterwards. Raises InferenceError if a graph fails."""
        blank = np.zeros((self.image_size, self.image_size, 3), np.uint8)
        embedding = self.embed(blank)
        center = [self.image_size / 2, self.image_size / 2]
        self.predict(embedding, points=[center])
        workers = self.decoder.describe()["row_workers"]
        if workers > 1:
            self.predict(embedding, points=[[center]] * workers)
        self._warm = True
        return self

    def ready(self) -> bool:
        """True once the graphs are loaded and ``warmup()`` succeeded, until ``close()``."""
        return self._warm and not (self.encoder.closed or self.decoder.closed)

    # -- encoder ---------------------------------------------------------------------------------
    def embed(self, image: Any) -> ImageEmbedding:
        """One image (PIL, array or path; see ``samrt.images``) -> its reusable embedding."""
        pixels, original, reshaped = self.processor.preprocess_image(image, argument="image")
        out = _finite(self.encoder.infer({"pixel_values": pixels[None]}), "encoder")
        return ImageEmbedding(embeddings=out["image_embeddings"], original_size=original, reshaped_input_size=reshaped)

    # -- decoder ---------------------------------------------------------------------------------
    def predict(
        self,
        embedding: ImageEmbedding,
        points: Any = None,
        labels: Any = None,
        boxes: Any = None,
        mask_input: Any = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> Prediction:
        """Masks for N objects in one call.

        On onnxruntime's CPU provider the decoder graph runs once per object (measured faster
        per object than one run over the batch, whose tensors outgrow the CPU caches; see
        ``samrt.backends.onnxruntime.decoder_rows_per_call``), the objects shared over
        ``decoder_workers`` threads (see :meth:`load`); on a GPU the batch runs at once
        (TensorRT: in chunks of the engine's batch profile).

        points [N, P, 2] (or [P, 2] for one object) as (x, y) in original-image pixels;
        labels [N, P], any integer dtype, values in {1, 0, -1, -10} (default all 1); boxes [N, 4] (or
        [4]) as x0, y0, x1, y1 in original pixels; mask_input [N, 1, 256, 256] low-res logits
        (e.g. a previous ``low_res_logits`` entry).
        """
        feeds = self.decoder_feeds(embedding, points, labels, boxes, mask_input)
        total = feeds["input_points"].shape[0]
        if total > self.max_prompts:
            raise InvalidInputError("points", f"{total} objects",
                                    f"at most max_prompts={self.max_prompts} per call (SamRuntime.load(max_prompts=...))")
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        sizes = (embedding.original_size, embedding.reshaped_input_size, (self.image_size, self.image_size))
        low_res = iou = masks = None
        for start in range(0, total, PREDICT_CHUNK):
            stop = min(start + PREDICT_CHUNK, total)
            out = self.decode({name: value if name == "image_embeddings" else np.ascontiguousarray(value[start:stop])
                               for name, value in feeds.items()})
            part = out["low_res_masks"][:, chosen]
            up = upscale_masks(part, *sizes) if return_logits else binarize_masks(part, *sizes)
            if low_res is None:
                low_res = np.empty((total, *part.shape[1:]), part.dtype)
                iou = np.empty((total, part.shape[1]), out["iou_scores"].dtype)
                masks = np.empty((total, *up.shape[1:]), up.dtype)
            low_res[start:stop], iou[start:stop], masks[start:stop] = part, out["iou_scores"][:, chosen], up
        return Prediction(masks=masks, iou_scores=iou, low_res_logits=low_res)

    def decode(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the decoder graph on ready feeds (see :meth:`decoder_feeds`); outputs as the graph's
        (``iou_scores`` [N, 4], ``low_res_masks`` [N, 4, 256, 256]). A NaN or inf in an output
        raises InferenceError naming it."""
        return _finite(self.decoder.infer({name: np.ascontiguousarray(value) for name, value in feeds.items()}),
                       "decoder")

    # -- automatic mask generation ---------------------------------------------------------------
    def generate(self, image: Any, *, progress: Any = None, settings: GenerateSettings | None = None,
                 **options: Any) -> list[dict[str, Any]]:
        """Segment everything, as ``segment_anything.SamAutomaticMaskGenerator.generate``.

        options: :class:`samrt.generate.GenerateSettings`' fields, by name (segment_anything's
        names and defaults: ``points_per_side=32``, ``points_per_batch=64``,
        ``pred_iou_thresh=0.88``, ``stability_score_thresh=0.95``, ``crop_n_layers=0``,
        ``min_mask_region_area=0``, ``output_mode="binary_mask"``, ...); or ``settings``, a
        ready GenerateSettings (not both).

        Returns one record per mask: ``segmentation`` (bool [H, W], or an RLE dict for
        ``output_mode`` "uncompressed_rle" / "coco_rle"), ``area`` (int), ``bbox`` (XYWH),
        ``predicted_iou``, ``point_coords`` ([[x, y]]), ``stability_score``, ``crop_box`` (XYWH).
        ``point_grids`` (one [K, 2] array in [0, 1] per crop layer) replaces
        ``points_per_side`` (pass ``points_per_side=None``). ``progress(done, total)`` is
        called after each decoder batch. One decoder call (see :meth:`predict`) per ``points_per_batch`` prompts.
        """
        if settings is not None and options:
            raise InvalidInputError("settings", "given with options", "settings or options, not both")
        if settings is not None and not isinstance(settings, GenerateSettings):
            raise InvalidInputError("settings", type(settings).__name__, "a samrt.generate.GenerateSettings")
        settings = settings or GenerateSettings.from_options(options)
        if progress is not None and not callable(progress):
            raise InvalidInputError("progress", type(progress).__name__, "a callable progress(done, total)")
        return generate_masks(self, image, settings, progress)

    def decoder_feeds(self, embedding: ImageEmbedding, points: Any, labels: Any, boxes: Any,
                      mask_input: Any) -> dict[str, np.ndarray]:
        """Build the decoder graph's inputs (see ``samrt.spec``) from user prompts. Without a
        ``mask_input`` the feeds' ``mask_input`` is a read-only broadcast of zeros (no memory per
        prompt); take row slices of it with ``np.ascontiguousarray``."""
        self._check_embedding(embedding)
        coords, labels = decoder_prompts(points, labels, boxes, original_size=embedding.original_size,
                                         image_size=self.image_size)
        n = coords.shape[0]
        size = self.mask_size
        if mask_input is None:
            masks = np.broadcast_to(np.zeros((1, 1, size, size), np.float32), (n, 1, size, size))
            has = np.zeros((n,), np.float32)
        else:
            masks = finite_array(mask_input, "mask_input", allow_empty=True)
            if masks.ndim == 3:
                masks = masks[:, None]
            if masks.shape != (n, 1, size, size):
                raise InvalidInputError("mask_input", masks.shape, f"[{n}, 1, {size}, {size}]")
            if np.abs(masks).max() > MAX_MASK_LOGIT:
                raise InvalidInputError("mask_input", float(np.abs(masks).max()),
                                        f"low-res logits within +-{MAX_MASK_LOGIT:g} (e.g. a previous low_res_logits)")
            masks = np.ascontiguousarray(masks, dtype=np.float32)
            has = np.ones((n,), np.float32)
        return {
            "image_embeddings": embedding.embeddings,
            "input_points": coords,
            "input_labels": labels,
            "mask_input": masks,
            "has_mask_input": has,
        }

    def _check_embedding(self, embedding: Any) -> None:
        if not isinstance(embedding, ImageEmbedding):
            raise InvalidInputError("embedding", type(embedding).__name__, "an ImageEmbedding from embed()")
        expected = tuple(d if isinstance(d, int) else None for d in self.embedding_shape)
        found = embedding.embeddings.shape
        if any(e is not None and e != f for e, f in zip(expected, found, strict=True)):
            raise InvalidInputError("embedding", f"embeddings of shape {found}",
                                    f"the shape this engine's decoder takes {list(self.embedding_shape)}")
        if max(embedding.reshaped_input_size) > self.image_size:
            raise InvalidInputError("embedding", f"reshaped_input_size {embedding.reshaped_input_size}",
                                    f"sides of at most this engine's image size {self.image_size}")

    def close(self) -> None:
        self._warm = False
        for runner in (self.encoder, self.decoder):
            runner.close()


def _finite(outputs: dict[str, np.ndarray], graph: str) -> dict[str, np.ndarray]:
    """``outputs`` unchanged, or InferenceError naming the first output holding NaN or inf."""
    for name, value in outputs.items():
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise InferenceError(f"output {name} holds NaN or inf (the graph overflowed, or the engine is "
                                 "broken: check it with `samexport report`)", graph=graph)
    return outputs


def _warn_without_int8_kernels(directory: Path, manifest: EngineManifest) -> None:
    """Warn where this int8 engine will likely run slower than fp32: several int8 products per
    weight MatMul (two weight terms; engines built before the manifest recorded the terms count as
    such) on a CPU without int8 dot-product instructions. One term (``--int8-terms 1``) is left
    alone: its single product still takes about half the FP32 time there."""
    if manifest.int8_terms == 1:
        return
    if cpu.int8_dot_products() is False:
        warnings.warn(PerformanceWarning(
            f"{directory} is an int8 engine with two int8 terms per weight, and this CPU has no int8 dot-product "
            "instructions (VNNI or AMX on x86, asimddp or i8mm on Arm): each int8 product takes about half the "
            "time of an FP32 one here, and this engine runs two or three per weight MatMul, so it will likely be "
            "slower than the fp32 one; serve the fp32 engine on this machine, or a --int8-terms 1 build where its "
            "accuracy is enough (docs/precision.md)"),
            stacklevel=3)


def _check_contract(directory: Path, files: dict[str, str], encoder: Runner, decoder: Runner) -> None:
    """The loaded graphs' real input and output names against the contract (``samrt.spec``), so a
    graph file swapped for another (with its hash updated) is named here, not blamed on the
    first call's feeds. Raises ManifestError naming the file."""
    for graph, runner in (("encoder", encoder), ("decoder", decoder)):
        inputs, outputs = spec.graph_contract(graph)
        found = (sorted(runner.inputs), sorted(runner.outputs))
        expected = (sorted(t.name for t in inputs), sorted(t.name for t in outputs))
        if found != expected:
            raise ManifestError(
                f"this file is not a {graph} graph: its inputs {found[0]} and outputs {found[1]} should be "
                f"{expected[0]} and {expected[1]} (a wrong or swapped file; export the engine again)",
                path=str(directory / files[graph]))
