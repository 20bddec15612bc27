"""Optimisation profiles for the TensorRT engines, planned from the manifest's graph I/O.

Each graph input's shape in the manifest is static except for named axes (``samrt.spec``):
``batch`` (encoder images), ``num_prompts`` (N) and ``num_points`` (P) of the decoder. A profile
gives every named axis a (min, opt, max); static axes are fixed.

- Encoder: one profile, batch 1..``max_batch`` (opt 1).
- Decoder: P counts the user's points plus the two box corners or SAM's pad point, so its max is
  ``max_points + 2`` and its opt 2 (one click + pad, or a box). Two profiles:
  interactive, N 1..``INTERACTIVE_PROMPTS`` with opt 1 (a user clicking in a UI), and batch,
  N 1..``max_prompts`` with opt ``max_prompts`` (automatic mask generation, box batches).

The runner takes the first profile a call fits, so N = 1 always runs on kernels tuned for N = 1;
calls beyond ``max_prompts`` are split by the runner; calls beyond ``max_points`` are refused with
the flag to rebuild with.
"""

from __future__ import annotations

from samrt.backends.tensorrt.profiles import Profile, ShapeRange
from samrt.checks import check_int
from samrt.engine_manifest import EngineManifest
from samrt.errors import ManifestError
from samrt.spec import TensorSpec

INTERACTIVE_PROMPTS = 4
Axes = dict[str, tuple[int, int, int]]  # named axis -> (min, opt, max)


def _positive(argument: str, value: int, limit: int) -> None:
    check_int(argument, value, low=1, high=limit)


def planned_axes(*, max_batch: int = 1, max_prompts: int = 64, max_points: int = 16) -> dict[str, list[Axes]]:
    """Per graph, one dict of named-axis ranges per profile (see the module docstring)."""
    _positive("--max-batch", max_batch, 64)
    _positive("--max-prompts", max_prompts, 4096)
    _positive("--max-points", max_points, 1024)
    points = (1, 2, max_points + 2)
    interactive = min(INTERACTIVE_PROMPTS, max_prompts)
    decoder = [{"num_prompts": (1, 1, interactive), "num_points": points}]
    if max_prompts > interactive:
        decoder.append({"num_prompts": (1, max_prompts, max_prompts), "num_points": points})
    return {"encoder": [{"batch": (1, 1, max_batch)}], "decoder": decoder}


def plan_profiles(manifest: EngineManifest, **limits: int) -> dict[str, list[Profile]]:
    """Profiles for both graphs of ``manifest`` under ``limits`` (max_batch, max_prompts, max_points)."""
    plans = planned_axes(**limits)
    profiles: dict[str, list[Profile]] = {}
    for graph, axes_list in plans.items():
        inputs = manifest.graphs[graph].inputs
        profiles[graph] = [{tensor.name: _range(tensor, axes, graph) for tensor in inputs} for axes in axes_list]
    return profiles


def _range(tensor: TensorSpec, axes: Axes, graph: str) -> ShapeRange:
    low, mid, high = [], [], []
    for dim in tensor.shape:
        if isinstance(dim, int):
            low.append(dim), mid.append(dim), high.append(dim)
        elif dim in axes:
            a, b, c = axes[dim]
            low.append(a), mid.append(b), high.append(c)
        else:
            raise ManifestError(f"{graph} input {tensor.name} has an axis {dim!r} no profile plans for")
    return ShapeRange(min=tuple(low), opt=tuple(mid), max=tuple(high))
