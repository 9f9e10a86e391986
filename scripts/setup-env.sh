#!/usr/bin/env bash
# Create .venv and install qsarmil with its test tools.
# PyTorch: where the machine offers a local wheel (pip's find-links / wheelhouse, e.g. a CPU
# build), take it first; elsewhere pip picks whatever the index serves. torch is not capped.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet_pip() {  # pip, minus this machine's noisy "location is ignored" warnings; keeps pip's status
  "$py" -m pip --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored" || true; }
}
[ -x .venv/bin/python ] || python3 -m venv .venv
py=.venv/bin/python
quiet_pip install -q --upgrade pip
if ! "$py" -c "import torch" 2>/dev/null; then
  if quiet_pip install -q --no-index --no-deps torch; then
    echo "setup: using the local PyTorch wheel ($("$py" -m pip show torch 2>/dev/null | grep ^Version))"
  else
    echo "setup: no local PyTorch wheel; installing torch from the package index"
  fi
fi
quiet_pip install -q -e ".[dev]"
"$py" -c "import milearn_core, qsarmil, torch, pytest"
