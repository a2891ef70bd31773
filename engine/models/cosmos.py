"""Cosmos-Predict2.5 (Cosmos2_5_PredictBasePipeline) as a base of the engine, without its guardrail.

The pipeline's parts are loaded one by one (the transformer as `CosmosFlowTransformer`, below) and put
in a Cosmos2_5_PredictBasePipeline whose safety checker is None: diffusers then refuses to *call* it
("You have disabled the safety checker ... NVIDIA Open Model License"), so nothing here generates
through the pipeline without the guardrail, while the engine drives the transformer, the Wan VAE and
the Qwen2.5-VL text encoder itself, as it does Wan2.1's (docs/distillation.md, "Cosmos-Predict2.5").

The conversion to the engine's convention, derived from Cosmos2_5_PredictBasePipeline.__call__:

- Noise. The pipeline sets `latents` to unit noise and steps them with UniPC configured
  `use_flow_sigmas=True, prediction_type="flow_prediction"`, for which x0 = x_sigma - sigma * model_output
  (UniPCMultistepScheduler.convert_model_output). So x_sigma = (1 - sigma) x0 + sigma eps and the network
  predicts v = eps - x0: Wan's convention, with sigma = t.
- Timestep. The transformer is given sigma itself (`in_timestep = ... sigma_t`), in [0, 1], not
  1000 sigma; velocity() passes 1000 t, so the adapter divides by 1000. The pipeline always passes a
  per-frame timestep of shape (B, 1, F', 1, 1): conditioning frames get `conditional_frame_timestep`
  (1e-4), the others sigma.
- Conditioning by frame replacement (engine/models/frame_replacement.py, FrameCondition with
  `mask_channel`). With `cond_mask` 1 on the given latent frames: the transformer sees `cond_mask *
  cond_latent + (1 - cond_mask) * latents`, takes `condition_mask=cond_mask` as an extra channel and a
  zero `padding_mask`; its output is kept where the mask is 0. Where the mask is 1 the pipeline uses
  `gt_velocity = (latents_start - cond_latent)`, fixed from the starting noise. The frame-replacement
  helper uses (x_t - cond_latent) / t instead: the velocity whose x0 = x_t - t v is exactly the given
  frame at every step, whatever x_t holds there. The two agree whenever x_t lies on the line from
  cond_latent to the starting noise with sigma_start = 1; the pipeline starts at sigma 200/201 from
  unscaled noise, so its given frames end at 0.995 cond_latent + 0.005 eps, ours at cond_latent. Either
  way the student, fake score and teacher all predict the given frame there, so DMD2/DFD losses have no
  gradient on it.
- Text-to-video: `cond_mask` and indicator are zeros (the pipeline's `num_frames_in = 0`), so the
  timestep is sigma on every frame and the output is the network's.
- Guidance: the pipeline combines `cond + s (cond - uncond)`, i.e. the engine's `uncond + (1 + s)(cond -
  uncond)`: Cosmos' guidance 7 is the engine's 8 (`COSMOS_RECIPE`).

The adapter's input is the frame-replacement helper's: the latents with the given frames already put
in, then one channel that is 1 on the given latent frames, read as Cosmos' per-frame indicator. The given
frame is encoded alone, as for Wan2.2-TI2V: Wan's causal VAE codes frame 0 alone, so it equals the first
latent frame the pipeline's `prepare_latents` encodes from the image followed by black frames
(tests/test_cosmos.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import Cosmos2_5_PredictBasePipeline, CosmosTransformer3DModel
from diffusers.models.transformers import transformer_cosmos

from .base import STUDIO_META, BaseModel, ModelError, hub_error
from .names import HUB_REVISIONS

COSMOS_PIPELINE = "Cosmos2_5_PredictBasePipeline"
CONDITION_TIMESTEP = 1e-4  # the pipeline's `conditional_frame_timestep` for the given frames
# The published sampling recipe (the pipeline's defaults), guidance in the engine's convention.
COSMOS_RECIPE = {
    "num_frames": 93,
    "height": 704,
    "width": 1280,
    "fps": 16,
    "text_len": 512,
    "steps": 35,
    "guidance": 8.0,  # the pipeline's guidance_scale 7: cond + 7 (cond - uncond)
}


# Cosmos-Predict2.5-2B's transformer config, from diffusers' scripts/convert_cosmos_to_diffusers.py
# (TRANSFORMER_CONFIGS["Cosmos-2.5-Predict-Base-2B"]): for speed and memory figures with random weights.
COSMOS_2B_TRANSFORMER = dict(
    in_channels=16 + 1,
    out_channels=16,
    num_attention_heads=16,
    attention_head_dim=128,
    num_layers=28,
    mlp_ratio=4.0,
    text_embed_dim=1024,
    adaln_lora_dim=256,
    max_size=(128, 240, 240),
    patch_size=(1, 2, 2),
    rope_scale=(1.0, 3.0, 3.0),
    concat_padding_mask=True,
    extra_pos_embed_type=None,
    use_crossattn_projection=True,
    crossattn_proj_in_channels=100352,  # Qwen2.5-VL-7B: 28 layers x 3584, every layer's state concatenated
    encoder_hidden_states_channels=1024,
)


class _NearestResize:
    """What CosmosTransformer3DModel.forward takes from torchvision (`transforms.functional.resize` with
    `InterpolationMode.NEAREST`, to fit the padding mask to the latents), in torch alone: torchvision is
    kept out of our stack (its wheels pin another torch), and the engine's padding mask is all zeros."""

    class InterpolationMode:
        NEAREST = "nearest"

    class functional:  # noqa: N801  (torchvision's module name, as the transformer spells it)
        @staticmethod
        def resize(mask: torch.Tensor, size, interpolation="nearest") -> torch.Tensor:
            return torch.nn.functional.interpolate(mask, size=tuple(size), mode="nearest")


if not hasattr(transformer_cosmos, "transforms"):  # torchvision absent: diffusers left the name undefined
    transformer_cosmos.transforms = _NearestResize


class _ProjectOnce(torch.nn.Sequential):
    """The transformer's text projection (Linear 100352 -> 1024, GELU; frozen, no LoRA on it), which
    passes through embeddings already projected: the engine projects each caption once when it encodes
    it, so a cached embedding is 1024 wide, not 100352 (about 1 MB per caption instead of 100 MB)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self[0].out_features and x.shape[-1] != self[0].in_features:
            return x
        return super().forward(x)


class CosmosFlowTransformer(CosmosTransformer3DModel):
    """CosmosTransformer3DModel answering velocity()'s call: noisy latents (for image-to-video with the
    given frames put in and their indicator channel after them, frame_replacement.frame_velocity),
    timestep 1000 t, prompt embeddings; returns the network's Wan velocity v = eps - x0 (the given frames'
    is the frame-replacement helper's).
    Its weights, config and LoRA keys are CosmosTransformer3DModel's. A call with `condition_mask` is the
    pipeline's own and goes to the parent unchanged."""

    def project_prompts_once(self) -> CosmosFlowTransformer:
        """Let the text projection pass already projected embeddings (_ProjectOnce); the same children,
        so the same state-dict and LoRA keys. (Not in __init__: diffusers reads the config from its
        signature.)"""
        if self.config.use_crossattn_projection and not isinstance(self.crossattn_proj, _ProjectOnce):
            self.crossattn_proj = _ProjectOnce(*self.crossattn_proj)
        return self

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict: bool = True, **pipeline_kwargs):
        if "condition_mask" in pipeline_kwargs:
            return super().forward(
                hidden_states, timestep, encoder_hidden_states, return_dict=return_dict, **pipeline_kwargs
            )
        v = self.flow_velocity(hidden_states, timestep, encoder_hidden_states)
        return (v,) if not return_dict else {"sample": v}

    def flow_velocity(self, hidden_states, timestep, encoder_hidden_states) -> torch.Tensor:
        z = self.config.out_channels
        x = hidden_states[:, :z]
        b, _, frames, height, width = x.shape
        sigma = (torch.as_tensor(timestep, device=x.device, dtype=torch.float32) / 1000.0).expand(b)
        if hidden_states.shape[1] == z:  # text-to-video: no frame given
            indicator = x.new_zeros(b, 1, frames, 1, 1, dtype=torch.float32)
        elif hidden_states.shape[1] == z + 1:
            indicator = hidden_states[:, z:, :, :1, :1].float()
        else:
            raise ValueError(
                f"the Cosmos transformer takes {z} latent channels and, for a given frame, one indicator "
                f"channel, not {hidden_states.shape[1]}: condition it with a FrameCondition"
            )
        in_timestep = indicator * CONDITION_TIMESTEP + (1 - indicator) * sigma.view(b, 1, 1, 1, 1)
        dtype = self.patch_embed.proj.weight.dtype
        return (
            super()
            .forward(
                hidden_states=x.to(dtype),
                timestep=in_timestep,  # float32, as the pipeline passes it
                encoder_hidden_states=encoder_hidden_states.to(dtype),
                condition_mask=indicator.expand(-1, -1, -1, height, width).to(dtype),
                padding_mask=x.new_zeros(1, 1, height, width, dtype=dtype),
                return_dict=False,
            )[0]
            .to(hidden_states.dtype)
        )


class CosmosModel(BaseModel):
    """A loaded Cosmos-Predict2.5: image-to-video (its first frame replaced in the latents) and, given no
    frame, text-to-video; prompts through Qwen2.5-VL as the pipeline encodes them."""

    frame_mask_channel = True  # its FrameCondition goes in as an indicator channel (frame_replacement.py)

    @property
    def task(self) -> str:
        return "i2v"

    @property
    def frame_replacement(self) -> bool:
        """Its given frame replaces the first latent frame (engine/models/frame_replacement.py)."""
        return True

    @property
    def tasks(self) -> tuple[str, ...]:
        """The paper's image-to-video base: distilled and evaluated from a first frame."""
        return ("i2v",)

    @property
    def defaults(self) -> dict:
        return COSMOS_RECIPE

    def check_video_shape(self, num_frames: int, height: int, width: int) -> None:
        super().check_video_shape(num_frames, height, width)
        # The pipeline's own rule (check_inputs) is the same 16 for the Wan VAE with patch 2.
        limit = self.transformer.config.max_size
        t, s = self.vae.config.scale_factor_temporal, self.vae.config.scale_factor_spatial
        p = self.transformer.config.patch_size
        if (num_frames - 1) // t + 1 > limit[0] or height // s // p[1] > limit[1] or width // s // p[2] > limit[2]:
            raise ModelError(
                f"{num_frames}x{height}x{width} is beyond the transformer's max_size {tuple(limit)} "
                f"(latent frames, token rows, token columns); give a smaller video"
            )

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Every Qwen2.5-VL layer's hidden state, each normalized, concatenated (Cosmos' recipe), then
        through the transformer's frozen text projection, which the transformer then skips (_ProjectOnce)."""
        if self.pipe.text_encoder is None:
            raise ModelError(
                "the text encoder was released after the run cached its embeddings; "
                "load the model again to encode new prompts"
            )
        device = next(self.pipe.text_encoder.parameters()).device
        with torch.no_grad():
            emb = Cosmos2_5_PredictBasePipeline._get_prompt_embeds(
                self.pipe, prompt=list(prompts), max_sequence_length=self.text_len, device=device
            )
        with torch.no_grad():
            if isinstance(getattr(self.transformer, "crossattn_proj", None), _ProjectOnce):
                emb = self.transformer.crossattn_proj(emb.to(device=self.device, dtype=self.dtype))
        return emb.to(device=self.device, dtype=self.dtype)


def is_cosmos(folder: Path | None, hub_id: str | None = None) -> bool:
    """Whether the pipeline's model_index.json (a folder's, or a hub id's in the Hub cache) names
    Cosmos2_5_PredictBasePipeline."""
    index = folder / "model_index.json" if folder is not None else None
    if index is None and hub_id:
        from huggingface_hub import hf_hub_download  # huggingface_hub: only for a hub id

        try:
            index = Path(hf_hub_download(hub_id, "model_index.json", revision=HUB_REVISIONS.get(hub_id)))
        except (OSError, ValueError):
            return False
    try:
        return json.loads(index.read_text()).get("_class_name") == COSMOS_PIPELINE
    except (OSError, ValueError, AttributeError):
        return False


class _Deferred:
    """Stands in for the safety checker while the pipeline is built (its __init__ would otherwise build
    cosmos_guardrail's); replaced by None right after, so the pipeline refuses to be called."""


def load_cosmos(source: str, kind: str, device: str, dtype: torch.dtype) -> CosmosModel:
    """Cosmos2_5_PredictBasePipeline's parts from a folder (read-only is fine: nothing is written) or hub
    id (at its diffusers revision, HUB_REVISIONS), the transformer as CosmosFlowTransformer, no guardrail."""
    revision = HUB_REVISIONS.get(source) if kind == "hub" else None
    try:
        transformer = CosmosFlowTransformer.from_pretrained(
            source, subfolder="transformer", dtype=dtype, revision=revision
        ).project_prompts_once()
        pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(
            source, transformer=transformer, safety_checker=_Deferred(), dtype=dtype, revision=revision
        )
    except OSError as err:
        if kind == "hub":
            raise hub_error(source, err) from err
        raise ModelError(f"could not load the Cosmos-Predict2.5 folder {source}: {err}") from err
    pipe.register_modules(safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    meta = Path(source) / STUDIO_META if kind != "hub" else None
    own = json.loads(meta.read_text()) if meta is not None and meta.is_file() else {}
    return CosmosModel(pipe=pipe, source=source, meta={**COSMOS_RECIPE, "teacher_solver": "scheduler", **own})
