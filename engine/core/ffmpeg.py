"""The input options every ffmpeg read of a file passes, ours or a user's: local files only.

A file that is really a playlist or a description naming URLs (HLS, SDP) then makes ffmpeg open nothing
but local files, at any depth, so no upload can make the server call out. Here, in the leaf package,
because both the mp4 reader (engine/media) and the training windows' reader (engine/datasets) use it.
"""

READ_LOCAL_ONLY = ("-protocol_whitelist", "file")
