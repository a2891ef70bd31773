"""The typed configs of the jobs, torch-free: `distill` (DistillConfig), `sample` (SampleConfig) and
seed lists (`seeds`)."""
