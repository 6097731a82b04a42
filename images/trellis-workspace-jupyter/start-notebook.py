#!/usr/bin/python3
"""The entry point of the trellis-workspace-jupyter image (after tini): `jupyter lab` on every
address with no browser, the home directory as its root, then the arguments given; a
WorkspaceTemplate passes the gateway's base URL and an empty token and password (the gateway
authenticates every request). The server's defaults, including "fetch nothing from the
internet", are in /opt/jupyter/etc/jupyter/jupyter_server_config.json.

A first argument `start-notebook.py` (how templates start Jupyter's docker-stacks images) is
dropped, so such a template runs unchanged on this image.
"""
import os
import sys

JUPYTER = "/opt/jupyter/bin/jupyter"


def main() -> None:
    args = sys.argv[1:]
    if args and os.path.basename(args[0]) == "start-notebook.py":
        args = args[1:]
    home = os.environ.get("HOME") or "/home/workspace"
    os.execv(
        JUPYTER,
        [JUPYTER, "lab", "--ip=0.0.0.0", "--no-browser", f"--ServerApp.root_dir={home}", *args],
    )


if __name__ == "__main__":
    main()
