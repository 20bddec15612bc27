"""The reference PyTorch SAM, one block per module."""

from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import SamModel, SamOutput
from .vision_encoder import VisionEncoder

__all__ = ["SamModel", "SamOutput", "VisionEncoder", "PromptEncoder", "MaskDecoder"]
