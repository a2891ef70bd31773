"""DFD Studio: `python app.py` serves the studio on the built-in default (shapes-tiny).

Follows Hugging Face Space conventions: persistent /data when present, PORT and GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT from the environment.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def default_data_dir() -> Path:
    if os.environ.get("DFD_STUDIO_DATA"):
        return Path(os.environ["DFD_STUDIO_DATA"])
    if Path("/data").is_dir() and os.access("/data", os.W_OK):  # a Space's persistent storage
        return Path("/data/studio_data")
    return Path("studio_data")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="DFD Studio web app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", os.environ.get("PORT", 7860))))
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--no-worker", action="store_true", help="do not start a background job worker")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    from studio import build_studio, public_folder

    demo = build_studio(args.data_dir)
    print(f"DFD Studio: data in {args.data_dir.resolve()}, serving on http://{args.host}:{args.port}", flush=True)
    demo.queue(default_concurrency_limit=1).launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        allowed_paths=[str(public_folder(args.data_dir).resolve())],
        show_error=True,
    )


if __name__ == "__main__":
    main()
