"""The engine with a multimodal model: media scattered at their pads, through chunked prefill,
the encoder cache, the media-keyed prefix cache and per-request fault isolation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image

from engine.fakes import ByteTokenizer
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.engine.media import content_key, locate_media
from openk2.engine.sampling_params import SamplingParams
from openk2.model import build_model, get_preset
from openk2.model.vision import KimiK25ForConditionalGeneration, build_multimodal, get_vision_preset
from openk2.model.vision.processor import MediaItem, expand_media_pads, pack_items, preprocess_image

PAD = 500
TEXT = get_preset("debug").replace(initializer_range=0.1)
STEPS = 6
GREEDY = SamplingParams(temperature=0.0, max_tokens=STEPS, ignore_eos=True, logprobs=3)


@pytest.fixture(scope="module")
def model() -> KimiK25ForConditionalGeneration:
    model = build_multimodal(TEXT, get_vision_preset("debug"), dtype=torch.float64, seed=3)
    model.media_pad_token_id = PAD
    return model.eval()


def image(color: tuple[int, int, int], size: tuple[int, int] = (224, 200)) -> MediaItem:
    """A two-colour picture (so the patches differ) as one encoder input."""
    picture = Image.new("RGB", size, color)
    picture.paste((255 - color[0], color[1], 40), (0, 0, size[0] // 2, size[1] // 3))
    return preprocess_image(picture)


def prompt(items: list[MediaItem], text: tuple[int, ...] = (21, 22, 23)) -> list[int]:
    """Text, then each item's pads between two markers, then more text."""
    ids = [7, 8, 9]
    for _ in items:
        ids += [11, PAD, 12]
    return expand_media_pads(ids + list(text), [i.num_tokens for i in items], PAD)


def reference(model: KimiK25ForConditionalGeneration, ids: list[int], items: list[MediaItem]):  # noqa: ANN201
    """(greedy tokens, per-step log-softmax) by full recompute through the model's own forward."""
    pixels, grids = pack_items(items) if items else (None, None)
    seq, steps = list(ids), []
    with torch.inference_mode():
        for _ in range(STEPS):
            logits = model(torch.tensor([seq]), pixels, grids)[0, -1]
            steps.append(torch.log_softmax(logits.double(), -1))
            seq.append(int(logits.argmax()))
    return seq[len(ids) :], steps


def engine_for(model: KimiK25ForConditionalGeneration, **overrides: int) -> LLMEngine:
    config = dict(block_size=8, num_blocks=96, max_num_seqs=4, max_num_batched_tokens=16)
    return LLMEngine(model, ByteTokenizer(vocab_size=512), EngineConfig(**{**config, **overrides}))


def run(engine: LLMEngine, ids: list[int], items: list[MediaItem]):  # noqa: ANN201
    request_id = engine.add_request(ids, GREEDY, media=items)
    outputs = []
    while engine.has_unfinished_requests():
        outputs += [o for o in engine.step() if o.request_id == request_id]
    return outputs


def test_chunked_prefill_across_media_spans_equals_the_direct_model(model) -> None:  # noqa: ANN001
    """16-token chunks cut both 64-token images; tokens and logprobs equal the model's own
    forward with its masked scatter, step for step (logprobs are float32 in the sampler)."""
    items = [image((200, 30, 30)), image((20, 90, 220), (100, 180))]
    ids = prompt(items)
    assert all(item.num_tokens > 16 for item in items[:1])
    tokens, steps = reference(model, ids, items)
    outputs = run(engine_for(model), ids, items)
    assert [o.token_ids[0] for o in outputs] == tokens
    for out, logprobs in zip(outputs, steps, strict=True):
        entry = out.logprobs[0]
        assert abs(entry.logprob - float(logprobs[entry.token_id])) <= 2e-6
        for token, value in entry.top:
            assert abs(value - float(logprobs[token])) <= 2e-6


def test_the_tower_runs_once_per_item_and_a_repeated_image_is_not_encoded_again(model) -> None:  # noqa: ANN001
    engine = engine_for(model)
    items = [image((200, 30, 30)), image((20, 90, 220))]
    run(engine, prompt(items), items)
    assert engine.runner.encoder.num_encoded == 2  # 8 prefill chunks, 2 encodes
    run(engine, prompt(items[:1], (40, 41)), items[:1])
    assert engine.runner.encoder.num_encoded == 2


def test_same_text_with_another_image_shares_no_media_page(model) -> None:  # noqa: ANN001
    engine = engine_for(model)
    red, blue = image((200, 30, 30)), image((20, 90, 220))
    first = run(engine, prompt([red]), [red])
    second = run(engine, prompt([blue]), [blue])
    pads_start = prompt([red]).index(PAD)
    assert second[-1].num_cached_tokens == pads_start // 8 * 8  # only the text before the image
    assert first[0].logprobs[0].logprob != second[0].logprobs[0].logprob
    _, blue_steps = reference(model, prompt([blue]), [blue])
    assert abs(second[0].logprobs[0].logprob - float(blue_steps[0].max())) <= 2e-6
    again = run(engine, prompt([red]), [red])
    assert again[-1].num_cached_tokens > pads_start + red.num_tokens - 8  # the red pages hit
    assert [o.token_ids for o in again] == [o.token_ids for o in first]


def test_one_bad_item_fails_its_request_only(model) -> None:  # noqa: ANN001
    good = image((200, 30, 30))
    solo = run(engine_for(model), prompt([good]), [good])
    broken = image((20, 90, 220))
    broken = dataclasses.replace(broken, pixels=broken.pixels[:-3])  # grid covers more patches
    engine = engine_for(model)
    bad_id = engine.add_request(prompt([broken]), GREEDY, media=[broken])
    good_id = engine.add_request(prompt([good]), GREEDY, media=[good])
    outputs = {bad_id: [], good_id: []}
    while engine.has_unfinished_requests():
        for out in engine.step():
            outputs[out.request_id].append(out)
    (failure,) = outputs[bad_id]
    assert failure.finish_reason == "error" and "patches" in (failure.error or "")
    assert [o.token_ids for o in outputs[good_id]] == [o.token_ids for o in solo]
    assert engine.block_manager.num_free_blocks == engine.block_manager.num_blocks


def test_placeholders_and_items_must_agree(model) -> None:  # noqa: ANN001
    engine = engine_for(model)
    item = image((200, 30, 30))
    ids = prompt([item])
    with pytest.raises(ValueError, match="placeholder tokens"):
        engine.add_request(ids, GREEDY, media=[item, item])
    with pytest.raises(ValueError, match="placeholder tokens"):
        engine.add_request(ids, GREEDY)
    with pytest.raises(ValueError, match="2 media keys for 1 media items"):
        engine.add_request(ids, GREEDY, media=[item], media_keys=[b"a", b"b"])
    (span,) = locate_media(ids, [item], PAD, [content_key(item)])
    assert span.key == content_key(item) == locate_media(ids, [item], PAD)[0].key
    broken = ids[:]
    broken[ids.index(PAD) + 3] = 99
    with pytest.raises(ValueError, match="not contiguous"):
        locate_media(broken[:-3] + [PAD], [item], PAD)


def test_a_text_only_model_refuses_media() -> None:
    text_model = build_model(TEXT, seed=1).eval()
    engine = LLMEngine(text_model, ByteTokenizer(vocab_size=512), EngineConfig(num_blocks=16))
    item = image((200, 30, 30))
    with pytest.raises(ValueError, match="text only"):
        engine.add_request(prompt([item]), GREEDY, media=[item])


def test_text_and_media_requests_batch_together_unchanged(model) -> None:  # noqa: ANN001
    """A text-only row and two image rows in the same steps (16-token budget, chunks of all
    three interleaved) give exactly what each gives alone."""
    red, blue = image((200, 30, 30)), image((20, 90, 220), (120, 90))
    requests = [(prompt([red]), [red]), (list(range(30, 70)), []), (prompt([blue]), [blue])]
    solo = [[o.token_ids for o in run(engine_for(model), ids, items)] for ids, items in requests]
    engine = engine_for(model, max_num_batched_tokens=24)
    ids = [engine.add_request(p, GREEDY, media=items) for p, items in requests]
    tokens: dict[str, list[list[int]]] = {i: [] for i in ids}
    mixed_steps = 0
    while engine.has_unfinished_requests():
        outputs = engine.step()
        mixed_steps += len({o.request_id for o in outputs}) > 1
        for out in outputs:
            tokens[out.request_id].append(out.token_ids)
    assert [tokens[i] for i in ids] == solo
    assert mixed_steps > 0


def test_the_items_of_one_chunk_are_encoded_in_one_packed_tower_call(model) -> None:  # noqa: ANN001
    """Two images and a repeat of the first inside one 256-token chunk: one tower call over
    the two distinct items, and the same tokens and logprobs as the model's own forward."""
    red, blue = image((200, 30, 30)), image((20, 90, 220), (100, 180))
    items = [red, blue, red]
    ids = prompt(items)
    engine = engine_for(model, max_num_batched_tokens=256)
    calls = []
    tower = model.vision_tower.forward

    def counted(pixels: torch.Tensor, grid: list) -> torch.Tensor:
        calls.append(list(grid))
        return tower(pixels, grid)

    model.vision_tower.forward = counted
    try:
        outputs = run(engine, ids, items)
    finally:
        del model.vision_tower.forward  # back to the class's method
    assert calls == [[red.grid_thw, blue.grid_thw]] and engine.runner.encoder.num_encoded == 2
    tokens, steps = reference(model, ids, items)
    assert [o.token_ids[0] for o in outputs] == tokens
    for out, logprobs in zip(outputs, steps, strict=True):
        assert abs(out.logprobs[0].logprob - float(logprobs[out.token_ids[0]])) <= 2e-6
