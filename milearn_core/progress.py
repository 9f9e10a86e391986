"""When a library call shows a progress bar: asked for, or someone is watching.

``progress=True`` always shows one, ``False`` never, and ``"auto"`` only where a person sees it
as it happens: stderr is a terminal, or the code runs in a Jupyter kernel. A script's log, a
KNIME console or CI gets nothing.
"""

from __future__ import annotations

import sys

__all__ = ["check_progress", "interactive", "show_progress"]


def interactive() -> bool:
    """Whether stderr is a terminal or the code runs in a Jupyter (ZMQ) kernel."""
    stream = sys.stderr
    try:
        if stream is not None and stream.isatty():
            return True
    except (AttributeError, ValueError):  # a replaced or closed stream
        pass
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def check_progress(progress) -> None:
    """Refuse anything but True, False or "auto"."""
    if progress is not True and progress is not False and progress != "auto":
        raise ValueError(f"progress must be True, False or 'auto', got {progress!r}")


def show_progress(progress) -> bool:
    """Whether a bar is shown for this ``progress`` setting."""
    check_progress(progress)
    return progress is True or (progress == "auto" and interactive())
