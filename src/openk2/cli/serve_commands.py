"""`openk2 serve`: the OpenAI-compatible server and web chat for a checkpoint or a preset.

The server (`openk2.serve`) is the OpenAI API; the web page, server-side tools and agent mode
(`openk2.app`) are mounted on it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openk2.cli import app


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", help="'embedded' (the shipped model), a "
                                       "checkpoint directory, or a preset name (debug, tiny, "
                                       "small: seeded random weights).")] = "embedded",
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key: Annotated[list[str] | None, typer.Option(
        "--api-key", help="Accepted bearer key for /v1 (repeatable); none = open.")] = None,
    served_model_name: Annotated[str | None, typer.Option(
        help="Model name clients send; default: the preset or directory name.")] = None,
    max_concurrency: Annotated[int | None, typer.Option(
        min=1, help="Requests in flight before the server answers 429.")] = None,
    max_model_len: Annotated[int | None, typer.Option(min=16, help="Longest prompt + output; "
                             "default: the model's max_position_embeddings (capped by the "
                             "cache memory).")] = None,
    max_num_seqs: Annotated[int, typer.Option(min=1, help="Rows in the running batch.")] = 64,
    cache_mb: Annotated[int | None, typer.Option(min=1, help="Latent cache memory in MiB; "
                        "default: one max-model-len request, at most half of free memory."
                        )] = None,
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    quant: Annotated[str, typer.Option(
        help="Weight-only quantization (CPU): none, int8 or int4 (use with --dtype bfloat16; "
             "a checkpoint's INT4 experts stay INT4).")] = "none",
    tokenizer: Annotated[str | None, typer.Option(
        help="Tokenizer dir (or tiktoken.model); default: the checkpoint's own files, the "
             "bundled vocabulary for a preset.")] = None,
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of a preset's random weights.")] = 0,
    rope_factor: Annotated[float | None, typer.Option(
        "--rope-factor", min=1.0, help="RESEARCH: override the YaRN factor; this changes every "
        "layer's softmax scale on released weights (logged loudly).")] = None,
    max_position_embeddings: Annotated[int | None, typer.Option(
        min=16, help="RESEARCH: override the model's position limit.")] = None,
    packed_gemms: Annotated[bool, typer.Option(
        help="On CPU, run GEMMs on oneDNN-packed weight copies: faster batches, 2x weight memory.",
    )] = True,
    tools: Annotated[str | None, typer.Option(
        "--tools", help="workspace=DIR: the web page's chats may call calculator, read_file, "
        "kv_get and kv_set, run by the server on DIR (off unless given); 'demo': the shipped "
        "demo workspace.")] = None,
    lora: Annotated[list[str] | None, typer.Option(
        "--lora", help="NAME=PATH: serve a PEFT LoRA adapter over the base model under NAME "
        "(requests pick it by `model`; repeatable, batched together, as vLLM does).")] = None,
    runs_dir: Annotated[Path, typer.Option(
        "--runs-dir", help="Where the page's agent-mode swarm runs are kept.")] = Path("runs"),
    vision: Annotated[str | None, typer.Option(
        "--vision", help="With a preset: add a random vision tower of this vision preset "
        "(debug, kimi-k2.6) so the server takes images and video.")] = None,
    allow_media_urls: Annotated[bool, typer.Option(
        help="Fetch http(s) image_url / video_url URLs (the server reaches out; off: data: "
        "URLs only).")] = False,
    media_root: Annotated[Path | None, typer.Option(
        help="Serve file:// media URLs under this directory (off unless given).")] = None,
    max_media_items: Annotated[int, typer.Option(
        min=1, help="Images plus videos per request.")] = 8,
    max_video_frames: Annotated[int, typer.Option(
        min=1, help="Frames sampled (2 fps) from one video.")] = 64,
    max_image_mb: Annotated[int, typer.Option(min=1, help="Encoded size of one image.")] = 20,
    max_video_mb: Annotated[int, typer.Option(min=1, help="Encoded size of one video.")] = 64,
) -> None:
    """Serve /v1/chat/completions, /v1/completions, /v1/models, /metrics and the chat page."""
    from openk2.app import AppConfig, mount_app, parse_tools_option
    from openk2.cli.workspace import workspace_toolset
    from openk2.engine.config import EngineConfig
    from openk2.serve.launch import ServeConfig, parse_lora_options, run
    from openk2.serve.media import MediaConfig, MiB

    try:
        app_config = AppConfig(workspace=parse_tools_option(tools), runs_dir=runs_dir,
                               make_tools=workspace_toolset)
        engine = EngineConfig(
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max(512, max_num_seqs),
            cache_memory_bytes=None if cache_mb is None else cache_mb * 2**20,
            packed_gemms=packed_gemms,
        )
        cfg = ServeConfig(
            model=model, host=host, port=port, api_keys=api_key or [],
            served_model_name=served_model_name, max_concurrency=max_concurrency,
            seed=seed, dtype=dtype, quant=quant, tokenizer=tokenizer, device=device, engine=engine,
            rope_factor=rope_factor, max_position_embeddings=max_position_embeddings,
            lora=parse_lora_options(lora or []),
            vision=vision,
            media=MediaConfig(
                max_items=max_media_items, max_image_bytes=max_image_mb * MiB,
                max_video_bytes=max_video_mb * MiB, max_video_frames=max_video_frames,
                allow_http=allow_media_urls, file_root=media_root,
            ),
        )  # fmt: skip
        run(cfg, extend=lambda asgi: mount_app(asgi, app_config))
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
