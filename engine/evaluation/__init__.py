"""Measuring models: metrics on clips (`metrics`), CLIP/DINOv2 features (`features`), the evaluation
command (`evaluate`, `specs`), the training-seed study (`study`) and speed benchmarks (`bench`)."""
