"""Making videos: the teacher's and the student's samplers (`sampling`) and `generate`, the one function
behind `python -m engine sample`, the sample job and the studio."""
