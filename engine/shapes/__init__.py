"""The built-in world: `world` (procedural clips with known factors and captions), the tiny teacher's
parts (`autoencoder`, `text`), training the teacher (`teacher`) and the attribute recognizer that
scores samples (`recognizer`)."""
