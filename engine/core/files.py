"""The file names a student folder and a run's outputs are read and written by. Torch-free."""

# A student's weights in its LoRA folder: diffusers' default weight name, so `load_lora_weights(folder)` finds it.
LORA_FILE = "pytorch_lora_weights.safetensors"
COMFY_FILE = "comfyui_lora.safetensors"  # the same weights under the original Wan module names, for ComfyUI
# Beside a run's preview videos (samples/stepN-promptI-seedS.mp4): which prompt I and seeds they show, so a
# model card can caption them with their prompts.
PREVIEWS_FILE = "previews.json"
