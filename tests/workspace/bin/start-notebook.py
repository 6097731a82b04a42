#!/usr/bin/env python3
"""Stands in for the Jupyter docker-stacks image's entrypoint (`start-notebook.py`) where the
workspace runs as a host process (the local control plane has no container runtime; see
tests/e2e/src/runtime.rs).

The image starts `jupyter lab` with its server configuration (listen on every address, port 8888,
no browser, the home directory as the root) plus the arguments the WorkspaceTemplate passes.
Here the server listens on the pod's loopback address instead, on the container's port, and uses
JupyterLab from the cached virtual environment of tests/workspace/setup-jupyterlab.sh. The
template's own arguments (base URL, no token, no password) follow unchanged, as in the image.
"""
import os
import sys


def main() -> None:
    venv = os.environ.get("TRELLIS_JUPYTERLAB")
    python = os.path.join(venv, "bin", "python") if venv else sys.executable
    pod_ip = os.environ.get("POD_IP")
    if not pod_ip:
        sys.exit("start-notebook.py: POD_IP is not set (the runtime stand-in sets it)")
    port = os.environ.get("TRELLIS_CONTAINER_PORT", "8888")
    home = os.environ.get("HOME", os.getcwd())
    args = [
        python,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ServerApp.ip={pod_ip}",
        f"--ServerApp.port={port}",
        # The image fails rather than move to another port; so must we.
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={home}",
        # Nothing here may reach outside the machine: no update checks, no news, no PyPI.
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
    ]
    # Nothing may reach outside: JupyterLab would ask whether to fetch Jupyter's news; say no for
    # the user, as a TRE's image would (the user can still change it).
    settings = os.path.join(
        home, ".jupyter", "lab", "user-settings", "@jupyterlab", "apputils-extension"
    )
    os.makedirs(settings, exist_ok=True)
    notification = os.path.join(settings, "notification.jupyterlab-settings")
    if not os.path.exists(notification):
        with open(notification, "w", encoding="utf-8") as out:
            out.write('{"fetchNews": "false", "checkForUpdates": false}\n')
    # The image runs as an unprivileged user; a developer's machine (or CI) may run us as root.
    if os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")
    args.extend(sys.argv[1:])
    # Jupyter's child processes (kernels, terminals) find the environment's programs first.
    if venv:
        os.environ["PATH"] = os.path.join(venv, "bin") + os.pathsep + os.environ.get("PATH", "")
    os.execv(python, args)


if __name__ == "__main__":
    main()
