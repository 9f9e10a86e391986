"""qsarmil: molecules as bags of fragments or conformers for multi-instance QSAR."""

__version__ = "0.1.0"
