"""samrt: the torch-free SAM runtime (numpy + pillow; onnxruntime / tensorrt optional)."""

from . import errors, spec
from .adapters import SamAutomaticMaskGenerator, SamPredictor
from .engine_manifest import EngineManifest
from .generate import GenerateSettings
from .processing import SamProcessor, post_process_masks
from .runtime import ImageEmbedding, Prediction, SamRuntime

__version__ = "0.1.0"
__all__ = [
    "errors", "spec", "SamProcessor", "post_process_masks", "SamRuntime", "ImageEmbedding", "Prediction",
    "SamPredictor", "SamAutomaticMaskGenerator", "EngineManifest", "GenerateSettings", "__version__",
]
