"""Training the built-in world's own models, above the models they build and load: the tiny teacher
`shapes-tiny` (`teacher`, `pretrain-teacher`) and its attribute recognizer (`recognizer`,
`train-recognizer`)."""
