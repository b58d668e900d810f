"""Shared test set-up.

Jupyter, IPython and matplotlib write only into a temporary folder during the
tests (kernels started by notebook tests inherit these variables), so a test
run leaves nothing in the user's home.
"""

import os
import tempfile

import pytest
import torch

_SCRATCH = tempfile.mkdtemp(prefix="metalearn-tests-")
for _var, _sub in [
    ("JUPYTER_CONFIG_DIR", "jupyter-config"),
    ("JUPYTER_DATA_DIR", "jupyter-data"),
    ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
    ("IPYTHONDIR", "ipython"),
    ("MPLCONFIGDIR", "matplotlib"),
]:
    os.environ[_var] = os.path.join(_SCRATCH, _sub)
    os.makedirs(os.environ[_var], exist_ok=True)
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

# One thread is as fast as two for these small models, and keeps runs repeatable.
torch.set_num_threads(1)


@pytest.fixture
def generator() -> torch.Generator:
    """A freshly seeded generator for each test."""
    return torch.Generator().manual_seed(0)
