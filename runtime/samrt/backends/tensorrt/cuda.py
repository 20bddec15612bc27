"""The CUDA runtime API through NVIDIA's cuda-python bindings (no torch, no pycuda).

:func:`load_cudart` returns ``cuda.bindings.runtime`` (cuda-python >= 12.6) or the older
``cuda.cudart`` (ImportError when cuda-python is not installed); every call of it returns
``(error, *values)``, which :func:`check` unpacks or turns into a :class:`CudaError`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_cudart", "check", "CudaError"]


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call's error code."""


def load_cudart() -> Any:
    try:  # cuda-python >= 12.6
        from cuda.bindings import runtime  # type: ignore[import-not-found]
    except ImportError:
        from cuda import cudart as runtime  # type: ignore[import-not-found,no-redef]
    return runtime


def check(result: Any) -> Any:
    """``(error, value...)`` -> value (or a tuple of values, or None); raises CudaError on failure."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        name = getattr(error, "name", str(error))
        raise CudaError(f"CUDA call failed: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)
