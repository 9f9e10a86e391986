"""The command line's own exceptions: :class:`CommandError` (one stderr line, exit status 2 or
another code) and :class:`Terminated` (SIGTERM). Kept apart from :mod:`qsarmil.cli` so that the
modules behind the commands can raise them without importing the parsers."""

from __future__ import annotations


class CommandError(SystemExit):
    """Exit status 2 with a message (``str(exc)``), printed as one line on stderr by :func:`main`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(code)
        self.message = " ".join(str(message).splitlines())

    def __str__(self) -> str:
        return self.message


class Terminated(BaseException):
    """Raised by the SIGTERM handler so that ``finally`` blocks and temp-file cleanup run."""
