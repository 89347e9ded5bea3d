"""Multimodal SFT: batches of chats with media, the answer-only loss, and a frozen text model."""

from __future__ import annotations

import torch

from openk2.model import get_preset
from openk2.model.vision import build_multimodal, get_vision_preset
from openk2.model.vision.processor import MediaItem
from openk2.train.data import IGNORE, EncodedChat
from openk2.train.multimodal import (
    MediaChat,
    collate,
    freeze_language_model,
    media_loss_sum,
    media_train_step,
)
from openk2.train.optim.groups import param_groups
from openk2.train.optim.muon import MuonAdamW
from openk2.train.optim.schedule import ScheduleConfig

PAD_ID, MEDIA = 0, 500


def _model() -> torch.nn.Module:
    text = get_preset("debug")
    vision = get_vision_preset("debug", text_hidden_size=text.hidden_size)
    model = build_multimodal(text, vision, seed=0)
    model.media_pad_token_id = MEDIA
    return model


def _item(seed: int, h: int = 4, w: int = 4) -> MediaItem:
    pixels = torch.randn(h * w, 3, 14, 14, generator=torch.Generator().manual_seed(seed))
    return MediaItem(pixels=pixels, grid_thw=(1, h, w), num_tokens=(h // 2) * (w // 2))


def _chat(seed: int, answer: int, extra: int = 0) -> MediaChat:
    ids = [7, 8] + [MEDIA] * 4 + [9] * (1 + extra) + [answer, 11]
    trainable = [False] * (len(ids) - 2) + [True, True]
    return MediaChat(chat=EncodedChat(ids=ids, trainable=trainable), items=(_item(seed),))


def test_collate_right_pads_and_packs_items_in_row_order() -> None:
    a, b = _chat(0, 40), _chat(1, 41, extra=3)
    batch = collate([a, b], PAD_ID)
    assert batch.inputs_BT.shape == (2, len(b.chat.ids) - 1)
    assert (batch.inputs_BT[0, len(a.chat.ids) - 1:] == PAD_ID).all()
    assert (batch.labels_BT[0, len(a.chat.ids) - 1:] == IGNORE).all()
    assert batch.labels_BT[0].tolist().count(IGNORE) == batch.labels_BT.shape[1] - 2
    assert torch.equal(batch.pixels, torch.cat([a.items[0].pixels, b.items[0].pixels]))
    assert batch.grid_thw == [(1, 4, 4), (1, 4, 4)]


def test_a_frozen_text_model_gets_no_gradient_and_stays_unchanged() -> None:
    model = _model()
    freeze_language_model(model)
    media_loss_sum(model, collate([_chat(0, 40)], PAD_ID)).backward()
    assert all(p.grad is None for p in model.language_model.parameters())
    assert model.vision_tower.patch_embed.proj.weight.grad.abs().sum() > 0
    assert model.mm_projector.proj[2].weight.grad.abs().sum() > 0
    model.zero_grad()
    text_before = {k: v.clone() for k, v in model.language_model.state_dict().items()}
    tower_before = model.vision_tower.encoder.blocks[0].wqkv.weight.clone()
    media_train_step(model, MuonAdamW(param_groups(model)), collate([_chat(0, 40)], PAD_ID),
                     step=0, total_steps=1, schedule=ScheduleConfig(kind="constant"),
                     grad_clip=1.0)
    text_after = model.language_model.state_dict()
    assert all(torch.equal(text_before[k], text_after[k]) for k in text_before)
    assert not torch.equal(tower_before, model.vision_tower.encoder.blocks[0].wqkv.weight)


def test_the_model_learns_to_tell_two_images_apart() -> None:
    """Two chats with the same text and different images: only the media can tell the
    answers apart, so getting both right means the scatter carries what the tower sees."""
    torch.manual_seed(0)
    model = _model()
    optimizer = MuonAdamW(param_groups(model))
    batch = collate([_chat(0, 40), _chat(1, 41)], PAD_ID)
    schedule = ScheduleConfig(kind="constant")
    losses = [media_train_step(model, optimizer, batch, step=s, total_steps=40,
                               schedule=schedule, grad_clip=1.0).loss for s in range(40)]
    assert losses[-1] < 0.1 * losses[0]
    with torch.no_grad():
        logits = model(batch.inputs_BT, batch.pixels, batch.grid_thw)
    answer_pos = len(_chat(0, 40).chat.ids) - 3
    assert logits[:, answer_pos].argmax(-1).tolist() == [40, 41]


def test_scale_penalty_is_zero_for_centred_tokens_at_the_target_norm_and_grows_with_a_shared_part(
) -> None:
    from openk2.train.multimodal import scale_penalty

    centred = torch.tensor([[0.3, 0.0], [-0.3, 0.0], [0.0, 0.3], [0.0, -0.3]])
    assert float(scale_penalty(centred, 0.3)) < 1e-10
    shared = centred + torch.tensor([3.0, 3.0])
    assert float(scale_penalty(shared, 0.3)) > 100 * float(scale_penalty(centred * 2, 0.3))
