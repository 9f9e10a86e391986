"""``python -m qsarmil``: the command line (see :mod:`qsarmil.cli`)."""

from .cli import main

main()
