"""Which model is this: base models by name, folder or hub id (`names`, torch-free; `base`, loading),
students and their LoRA files (`students`, torch-free; `lora`), and atomic folder writes (`folders`)."""
