"""The errors a table reader or writer raises."""


class TableError(ValueError):
    """A table file cannot be read or written as asked; the message names the file."""


class BudgetError(TableError):
    """A file holds more than a :class:`~qsarmil.io.limits.Limits` budget allows; the message
    names the line, record or cell and the limit."""
