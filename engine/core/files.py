"""The file names a student folder and a run's outputs are read and written by. Torch-free."""

# A student's weights in its LoRA folder: diffusers' default weight name, so `load_lora_weights(folder)` finds it.
LORA_FILE = "pytorch_lora_weights.safetensors"
COMFY_FILE = "comfyui_lora.safetensors"  # the same weights under the original Wan module names, for ComfyUI
# A two-expert student (Wan2.2-A14B): LORA_FILE is the high-noise expert's (`transformer`), these the low-noise
# expert's (`transformer_2`, which diffusers loads with load_into_transformer_2=True).
LOW_NOISE_LORA_FILE = "pytorch_lora_weights_low_noise.safetensors"
LOW_NOISE_COMFY_FILE = "comfyui_lora_low_noise.safetensors"
# Beside a run's preview videos (samples/stepN-promptI-seedS.mp4): which prompt I and seeds they show, so a
# model card can caption them with their prompts.
PREVIEWS_FILE = "previews.json"
