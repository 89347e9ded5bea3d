"""The K2.5 / K2.6 multimodal model: text model + MoonViT-3D + PatchMerger (assembly only).

`state_dict()` keys are the hub's `Kimi_K25ForConditionalGeneration` keys:
`language_model.model.*`, `language_model.lm_head.weight`, `vision_tower.*`, `mm_projector.*`.
Images and video chunks are encoded, projected and scattered, in order, over the expanded
`<|media_pad|>` tokens of the prompt; the text model then runs on those embeddings with plain
1-D positions (vision tokens get no special positions).
"""

from __future__ import annotations

import torch
from torch import nn

from openk2.model.cache import ContiguousLatentCache, LatentCache
from openk2.model.config import ModelConfig
from openk2.model.model import KimiK2ForCausalLM
from openk2.model.vision.config import VisionConfig
from openk2.model.vision.merge import scatter_media
from openk2.model.vision.projector import PatchMerger
from openk2.model.vision.tower import GridTHW, MoonViT3d, init_vision_modules

MEDIA_PAD_TOKEN_ID = 163605
"""`<|media_pad|>` (`media_placeholder_token_id`): one per LM token of an image or chunk."""


class KimiK25ForConditionalGeneration(nn.Module):
    """Vision tower + projector in front of the K2 text model."""

    def __init__(
        self, text_config: ModelConfig, vision_config: VisionConfig,
        *, media_pad_token_id: int = MEDIA_PAD_TOKEN_ID,
    ) -> None:  # fmt: skip
        super().__init__()
        if vision_config.text_hidden_size != text_config.hidden_size:
            raise ValueError(
                f"vision_config.text_hidden_size {vision_config.text_hidden_size} != text "
                f"hidden_size {text_config.hidden_size}"
            )
        self.config = text_config
        self.vision_config = vision_config
        self.media_pad_token_id = media_pad_token_id
        self.language_model = KimiK2ForCausalLM(text_config)
        self.vision_tower = MoonViT3d(vision_config)
        self.mm_projector = PatchMerger(vision_config)

    def media_embeddings(self, pixels_P3SS: torch.Tensor, grid_thw: GridTHW) -> torch.Tensor:
        """[N, text hidden] LM-token embeddings of all media items, item after item."""
        merged_NKD = self.vision_tower(pixels_P3SS, grid_thw)
        return self.mm_projector(merged_NKD.to(self.mm_projector.pre_norm.weight.dtype))

    def input_embeddings(
        self, input_ids_BT: torch.Tensor, pixels: torch.Tensor | None, grid_thw: GridTHW | None
    ) -> torch.Tensor:
        """Token embeddings with the media placeholders replaced by the media embeddings."""
        embed = self.language_model.model.embed_tokens
        is_pad = input_ids_BT == self.media_pad_token_id
        embeds_BTD = embed(input_ids_BT.masked_fill(is_pad, 0))
        if pixels is None or grid_thw is None:
            if bool(is_pad.any()):
                raise ValueError("the prompt has media placeholder tokens but no pixels were given")
            return embeds_BTD
        media_ND = self.media_embeddings(pixels, grid_thw)
        return scatter_media(embeds_BTD, input_ids_BT, media_ND, self.media_pad_token_id)

    def forward(
        self,
        input_ids: torch.Tensor,
        pixels: torch.Tensor | None = None,
        grid_thw: GridTHW | None = None,
        positions: torch.Tensor | None = None,
        cache: LatentCache | None = None,
        *,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        """Logits [B, T', V]: `input_ids` [B, T] with expanded placeholders, `pixels`
        [P, 3, ps, ps] and `grid_thw` for the media in prompt order (see `processor.py`)."""
        embeds_BTD = self.input_embeddings(input_ids, pixels, grid_thw)
        return self.language_model(
            None, positions, cache, inputs_embeds=embeds_BTD, logits_to_keep=logits_to_keep
        )

    def new_cache(self, batch_size: int, max_len: int) -> ContiguousLatentCache:
        """An empty latent cache for the text model: media are only in the prefill, and the
        decode steps after it pass plain token ids."""
        return self.language_model.new_cache(batch_size, max_len)

    @torch.no_grad()
    def init_weights(self, seed: int | None = None) -> None:
        """The text model's `init_weights`, then the vision rule (`MoonViT3d.init_weights`;
        the projector's Linears N(0, 0.02) with zero bias, its LayerNorm 1 / 0)."""
        self.language_model.init_weights(seed)
        generator = None
        if seed is not None:
            device = self.mm_projector.pre_norm.weight.device
            generator = torch.Generator(device=device).manual_seed(seed + 1)
        init_vision_modules(self.vision_tower, generator)
        init_vision_modules(self.mm_projector, generator)


def build_multimodal(
    text_config: ModelConfig,
    vision_config: VisionConfig,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int | None = 0,
) -> KimiK25ForConditionalGeneration:
    """Build on the meta device, materialise on `device` in `dtype`, then `init_weights(seed)`."""
    with torch.device("meta"):
        model = KimiK25ForConditionalGeneration(text_config, vision_config)
    model = model.to(dtype=dtype).to_empty(device=device)
    model.init_weights(seed)
    return model
