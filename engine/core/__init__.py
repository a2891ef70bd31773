"""What every other part of the engine shares and that depends on nothing of ours: a student's file
names (`files`), the paper's student times and their one check (`timesteps`), the flow-matching
arithmetic of the samplers, the trainer and the teacher's pretraining (`flow`), and whether this machine
has a GPU (`hardware`). All but `flow` are torch-free."""
