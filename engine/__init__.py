"""DFD Studio's torch side: the shapes world, models, samplers, distillation, evaluation and jobs.

Public API for the studio and scripts (import the submodules; nothing heavy is imported here):
- engine.world      the built-in procedural video world (prompts, clips, mode frequencies)
- engine.models     load_base_model(name) for shapes-tiny, a diffusers folder or a hub id
- engine.config     DistillConfig, SampleConfig: the typed job configs (torch-free)
- engine.generate   generate(): videos from a prompt
- engine.evaluate   evaluate(): fidelity, diversity, mode and colour metrics
"""
