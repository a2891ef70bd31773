"""`python -m engine ...`: the command line (`main`) and its `worker` / `jobs` commands (`jobs`)."""
