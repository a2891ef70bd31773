"""Measuring models: metrics on clips (`metrics`), CLIP/DINOv2 features (`features`), one model's
samples of one prompt measured as the studio shows them (`clip_metrics`), the evaluation command
(`evaluate`, `specs`), the training-seed study (`study`) and speed benchmarks (`bench`)."""
