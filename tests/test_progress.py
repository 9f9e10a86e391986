"""Library calls are quiet unless asked, or unless a person watches (terminal, Jupyter)."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from milearn_core import progress


class _Stream:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def test_auto_shows_a_bar_on_a_terminal_only(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    assert not progress.show_progress("auto")
    assert progress.show_progress(True)
    monkeypatch.setattr(sys, "stderr", _Stream(tty=True))
    assert progress.show_progress("auto")
    assert not progress.show_progress(False)


def test_auto_shows_a_bar_in_a_jupyter_kernel(monkeypatch):
    ZMQInteractiveShell = type("ZMQInteractiveShell", (), {})
    fake = types.SimpleNamespace(get_ipython=ZMQInteractiveShell)
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    assert progress.show_progress("auto")
    fake.get_ipython = type("TerminalInteractiveShell", (), {})  # plain IPython in a pipe: no
    assert not progress.show_progress("auto")


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_other_settings_are_refused(value):
    with pytest.raises(ValueError, match="progress must be True, False or 'auto'"):
        progress.show_progress(value)


def test_a_fit_in_a_script_writes_nothing_to_stderr():
    code = (
        "from qsarmil import QSARModel, load_dataset\n"
        "data = load_dataset('solubility').head(250)\n"
        "model = QSARModel().fit(data.smiles, data.target)\n"
        "model.predict(data.smiles)\n"
        "model.explain(data.smiles.iloc[0])\n"
        "print('fitted')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "fitted", done.stderr[-2000:]
    assert done.stderr == ""
