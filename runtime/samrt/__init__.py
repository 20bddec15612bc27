"""samrt: the torch-free SAM runtime (numpy + pillow; onnxruntime / tensorrt optional)."""

from . import errors

__version__ = "0.1.0"
__all__ = ["errors", "__version__"]
