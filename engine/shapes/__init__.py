"""The built-in world: `world` (procedural clips with known factors and captions), the tiny teacher's
parts (`autoencoder`, `text`) and the attribute recognizer that scores samples (`recognizer`). Training
the teacher and the recognizer is engine/pretrain/'s."""
