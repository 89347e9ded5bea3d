"""MoonViT-3D vision tower, PatchMerger projector and the K2.5 / K2.6 multimodal model."""

from openk2.model.vision.config import VISION_PRESETS, VisionConfig, get_vision_preset
from openk2.model.vision.multimodal import (
    MEDIA_PAD_TOKEN_ID,
    KimiK25ForConditionalGeneration,
    build_multimodal,
)
from openk2.model.vision.projector import PatchMerger
from openk2.model.vision.tower import MoonViT3d

__all__ = [
    "MEDIA_PAD_TOKEN_ID",
    "VISION_PRESETS",
    "KimiK25ForConditionalGeneration",
    "MoonViT3d",
    "PatchMerger",
    "VisionConfig",
    "build_multimodal",
    "get_vision_preset",
]
