"""The Cosmos-Predict2.5-2B stage of scripts/gpu_check.sh: its transformer (COSMOS_2B_TRANSFORMER, the
config of diffusers' conversion script) with random weights in bf16, driven through the engine's
velocity() and LoRA adapters at the published 93 x 704 x 1280 from a first frame: the teacher's forward
(no grad) and one LoRA update's forward and backward with gradient checkpointing, timed, with peak memory.
The text encoder is left out (it runs once per caption and is released): random prompt embeddings of
its width stand in. --dry-run: a tiny config on CPU, a check of the script.

    python scripts/gpu_check_cosmos.py --json OUT.json [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.distill.adapters import STUDENT, Adapters  # noqa: E402
from engine.generation.sampling import velocity  # noqa: E402
from engine.models.cosmos import COSMOS_2B_TRANSFORMER, COSMOS_RECIPE, CosmosFlowTransformer  # noqa: E402

TINY = {
    **COSMOS_2B_TRANSFORMER,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "num_layers": 2,
    "adaln_lora_dim": 4,
    "crossattn_proj_in_channels": 64,
    "encoder_hidden_states_channels": 32,
    "text_embed_dim": 32,
}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--rank", type=int, default=32)
    args = parser.parse_args()
    device = "cpu" if args.dry_run else "cuda"
    dtype = torch.float32 if args.dry_run else torch.bfloat16
    config = TINY if args.dry_run else COSMOS_2B_TRANSFORMER
    frames, height, width = (
        (5, 32, 32) if args.dry_run else (COSMOS_RECIPE["num_frames"], COSMOS_RECIPE["height"], COSMOS_RECIPE["width"])
    )
    text_len = 16 if args.dry_run else COSMOS_RECIPE["text_len"]
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        transformer = CosmosFlowTransformer(**config).to(dtype)
    build_s = time.perf_counter() - t0
    z = config["out_channels"]
    latent = (1, z, (frames - 1) // 4 + 1, height // 8, width // 8)
    x = torch.randn(latent, device=device)
    condition = torch.zeros(1, 4 + z, *latent[2:], device=device)  # Wan's layout: 4 mask channels, then latents
    condition[:, :4, :1] = 1
    condition[:, 4:, :1] = torch.randn(1, z, 1, *latent[3:], device=device)
    emb = torch.randn(1, text_len, config["crossattn_proj_in_channels"], device=device, dtype=dtype)
    figures = {
        "params_b": sum(p.numel() for p in transformer.parameters()) / 1e9,
        "video": [frames, height, width],
        "latent": list(latent),
        "tokens": latent[2] * latent[3] // 2 * latent[4] // 2,
        "build_s": round(build_s, 2),
    }
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        for i in range(2):  # the first pays for kernel selection
            _sync(device)
            t0 = time.perf_counter()
            v = velocity(transformer, x, 0.7, emb, condition)
            _sync(device)
            figures[f"teacher_forward_s_{i}"] = round(time.perf_counter() - t0, 3)
    assert torch.isfinite(v).all()
    if device == "cuda":
        figures["teacher_forward_peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.reset_peak_memory_stats()
    adapters = Adapters(transformer, rank=args.rank)
    adapters.keep_float32()
    adapters.use(STUDENT)
    transformer.enable_gradient_checkpointing()
    params = adapters.parameters(STUDENT)
    for i in range(2):
        _sync(device)
        t0 = time.perf_counter()
        loss = velocity(transformer, x, 0.7, emb, condition).float().square().mean()
        loss.backward()
        _sync(device)
        figures[f"lora_fwd_bwd_s_{i}"] = round(time.perf_counter() - t0, 3)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    if device == "cuda":
        figures["lora_fwd_bwd_peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        figures["device"] = torch.cuda.get_device_name(0)
    Path(args.json).write_text(json.dumps(figures, indent=1))
    print("cosmos-predict2.5-2b", json.dumps(figures))


if __name__ == "__main__":
    main()
