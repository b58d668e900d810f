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


# -- models and batches shared by the library's tests ------------------------------


class ScaledTanhNet(torch.nn.Module):
    """A second architecture: smooth activations and a buffer (input scaling)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("input_scale", torch.tensor(0.2))
        self.hidden = torch.nn.Linear(1, 16)
        self.out = torch.nn.Linear(16, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x * self.input_scale)))


def make_setup(architecture: str = "mlp", dtype: torch.dtype = torch.float64):
    """(model, params, batch) for "mlp" or "tanh_with_buffer"; tests import it from here."""
    from metalearn_lib import MLP, SinusoidTasks, parameters_of

    torch.manual_seed(0)
    model = MLP(hidden=(20, 20), seed=0) if architecture == "mlp" else ScaledTanhNet()
    model = model.to(dtype)
    batch = SinusoidTasks().sample(5, 6, 7, generator=torch.Generator().manual_seed(3), dtype=dtype)
    return model, parameters_of(model), batch


@pytest.fixture(scope="session")
def split():
    """The digits' meta-train and meta-test classes (loaded once per session)."""
    from metalearn_lib import digits_meta_split

    return digits_meta_split()


def max_difference(a: dict, b: dict) -> float:
    """Largest absolute difference between two parameter-shaped dicts with the same keys."""
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture
def signed_fomaml():
    """A toy algorithm registered for one test (the sign of FOMAML's direction), then removed."""
    from metalearn_lib.algorithms import (
        fomaml_direction,
        register_algorithm,
        unregister_algorithm,
    )
    from metalearn_lib.reference import (
        loop_fomaml,
        register_loop_direction,
        unregister_loop_direction,
    )

    def signed_direction(model, params, batch, *, inner_steps, inner_lr, loss_fn, scale=1.0):
        direction, loss = fomaml_direction(
            model, params, batch, inner_steps=inner_steps, inner_lr=inner_lr, loss_fn=loss_fn
        )
        return {n: scale * g.sign() for n, g in direction.items()}, loss

    def loop_signed(model, params, batch, *, inner_steps, inner_lr, loss_fn, scale=1.0):
        direction = loop_fomaml(
            model, params, batch, inner_steps=inner_steps, inner_lr=inner_lr, loss_fn=loss_fn
        )
        return {n: scale * g.sign() for n, g in direction.items()}

    register_algorithm("signed_fomaml", signed_direction, label="signSGD-FOMAML")
    register_loop_direction("signed_fomaml", loop_signed)
    try:
        yield "signed_fomaml"
    finally:
        unregister_loop_direction("signed_fomaml")
        unregister_algorithm("signed_fomaml")


# Debian's chromium, driven by playwright in the browser, site and classroom tests
# (never `playwright install`: it downloads a browser of its own).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def browser_or_skip() -> None:
    """Skip the calling test without chromium or playwright; fail instead when REQUIRE_BROWSER=1."""
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = f"{CHROMIUM} not found (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "python playwright is not installed"
    if missing:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
