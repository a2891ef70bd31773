"""The real configs of the Wan bases (transformer and VAE), typed from their releases so that a plan and a
random-weights timing model can be built without downloading a byte. No torch here."""

from __future__ import annotations

# Transformer configs of the Wan bases, from the Diffusers releases' transformer/config.json
# (Wan-AI/Wan2.1-T2V-1.3B-Diffusers, Wan-AI/Wan2.1-T2V-14B-Diffusers, Wan-AI/Wan2.2-TI2V-5B-Diffusers).
_WAN = dict(
    patch_size=(1, 2, 2),
    attention_head_dim=128,
    text_dim=4096,
    freq_dim=256,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)
WAN_1_3B = dict(_WAN, num_attention_heads=12, in_channels=16, out_channels=16, ffn_dim=8960, num_layers=30)
# The 14B config is also each expert of Wan2.2-T2V/I2V-A14B, checked against Wan-Video/Wan2.2's
# wan/configs/wan_t2v_A14B.py and wan_i2v_A14B.py (dim 5120 = 40 heads x 128, ffn_dim 13824, 40 layers).
WAN_14B = dict(_WAN, num_attention_heads=40, in_channels=16, out_channels=16, ffn_dim=13824, num_layers=40)
WAN_5B = dict(_WAN, num_attention_heads=24, in_channels=48, out_channels=48, ffn_dim=14336, num_layers=30)
# Wan2.2's VAE (48 latent channels, 16x spatial compression); Wan2.1's is AutoencoderKLWan's default config.
WAN22_VAE = dict(
    base_dim=160,
    decoder_base_dim=256,
    z_dim=48,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    temperal_downsample=[False, True, True],
    is_residual=True,
    in_channels=12,
    out_channels=12,
    patch_size=2,
    scale_factor_spatial=16,
    scale_factor_temporal=4,
)
