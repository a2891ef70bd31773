"""The user's videos as training data, torch-free, so a config and the studio can check them before
anything heavy loads: what `--data` names and a data-set config's folders (`dataset_config`), which files
of a folder are clips and under which caption (`sources`), and the windows cut from a video
(`video_windows`)."""
