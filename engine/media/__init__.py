"""Video files: reading and writing mp4 (`video`) and labelled side-by-side videos and grids (`composite`)."""
