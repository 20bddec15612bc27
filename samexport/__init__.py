"""samexport: SAM from PyTorch to deployable ONNX / TensorRT graphs, with proof of accuracy.

The names below are imported on first use, so that ``import samexport`` (and the command line's
start-up, where a Ctrl-C must still end in one sentence) does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
_LAZY = {
    "SamConfig": "samexport.config",
    "SamVisionConfig": "samexport.config",
    "SamPromptEncoderConfig": "samexport.config",
    "SamMaskDecoderConfig": "samexport.config",
    "preset": "samexport.config",
    "SamModel": "samexport.modeling",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'samexport' has no attribute {name!r}")
