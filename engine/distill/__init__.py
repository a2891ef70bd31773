"""Distillation: the DMD2/DFD losses (`losses`), the training loop (`trainer`), real data (`data`,
`uploads`) and multi-process runs (`distributed`)."""
