"""Making videos: the teacher's and the student's samplers (`sampling`), `generate`, the one function
behind `python -m engine sample` and the sample job, and `renderer`, which samples for a long-lived
process such as the studio with one cached model per base."""
