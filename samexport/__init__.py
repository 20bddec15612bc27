"""samexport: SAM from PyTorch to deployable ONNX / TensorRT graphs, with proof of accuracy."""

from .config import SamConfig, SamMaskDecoderConfig, SamPromptEncoderConfig, SamVisionConfig, preset
from .modeling import SamModel

__version__ = "0.1.0"
__all__ = [
    "SamConfig",
    "SamVisionConfig",
    "SamPromptEncoderConfig",
    "SamMaskDecoderConfig",
    "SamModel",
    "preset",
    "__version__",
]
