"""`make bench-quick` in the test suite: every benchmark runs and fills every table.

The quick run writes into a temporary folder (never into docs/benchmarks).
No assertion looks at wall time.
"""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

from metalearn_lib import ALGORITHMS  # noqa: E402  (the registry: every benchmark covers it)


def _reject_constant(name):
    raise ValueError(f"non-finite number {name} in JSON")


def load(path: Path) -> dict:
    return json.loads(path.read_text(), parse_constant=_reject_constant)


def numbers(value):
    """Every number inside a JSON value."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)


def finite_positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results"
    completed = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return out


def scripts() -> list[str]:
    return sorted(
        p.stem for p in BENCH.glob("*.py") if p.name != "run_all.py" and not p.stem.startswith("_")
    )


@pytest.mark.slow
def test_every_benchmark_writes_json_md_and_plots(quick_run):
    names = scripts()
    assert {"sinusoid_accuracy", "speed", "memory", "directions"} <= set(names)
    for name in names:
        data = load(quick_run / f"{name}.json")
        assert data, name
        assert all(math.isfinite(x) for x in numbers(data)), name
        fragment = (quick_run / f"{name}.md").read_text()
        assert fragment.startswith("## "), name
        images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", fragment)
        assert images, f"{name}.md links no plot"
        for image in images:
            assert (quick_run / image).stat().st_size > 1000, image
    # The index sits next to the output folder and links into it.
    index = (quick_run.parent / f"{quick_run.name}.md").read_text()
    assert "torch" in index and "make bench" in index
    for name in names:
        heading = (quick_run / f"{name}.md").read_text().splitlines()[0]
        assert heading in index
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", index):
        assert image.startswith(f"{quick_run.name}/")
        assert (quick_run.parent / image).exists()


@pytest.mark.slow
def test_sinusoid_accuracy_table_is_filled(quick_run):
    data = load(quick_run / "sinusoid_accuracy.json")
    models = {"maml", "fomaml", "reptile", "reptile_sgd", "pretrain"}
    models |= {f"{v}_s0" for v in ("imaml", "anil", "metasgd", "mamlpp")}  # variants, seed 0
    assert set(data["results"]) == models
    for model, by_shots in data["results"].items():
        assert set(by_shots) == {"K5", "K10"}, model
        for ev in by_shots.values():
            assert ev["steps"] == [0, 1, 5, 10]
            for key in ("mean", "ci95", "median", "worst_task", "diverged_tasks"):
                assert len(ev[key]) == 4, (model, key)
            assert all(finite_positive(m) for m in ev["mean"]), model
            assert all(c >= 0 for c in ev["ci95"]), model
    assert data["paper_K5"]["maml"] == {"1": 0.67, "5": 0.38, "10": 0.35}
    assert data["paper_K5"]["pretrain"] == {"1": 2.41, "5": 2.23, "10": 2.19}
    assert set(data["goal"]["met"]) == {"1", "5", "10"}
    for model, job in data["jobs"].items():
        assert job["train_cpu_seconds"] > 0 and job["settings"]["iterations"] > 0, model
        assert job["mode"] in {"eager", "compiled"} and job["compile_seconds"] >= 0, model
    assert 0 < data["paper_table_seconds"] <= data["wall_seconds"]
    assert data["jobs"]["reptile"]["settings"]["meta_optimizer"] == "adam"
    assert data["jobs"]["reptile_sgd"]["settings"]["meta_optimizer"] == "sgd"


@pytest.mark.slow
def test_maml_stability_follows_every_seed_over_training(quick_run):
    data = load(quick_run / "maml_stability.json")
    assert [run["seed"] for run in data["runs"]] == [0, 1]
    for run in data["runs"]:
        assert [c["iteration"] for c in run["checkpoints"]] == [20, 40]
        for c in run["checkpoints"]:
            assert c["steps"] == [1, 5, 10]
            assert all(finite_positive(m) for m in c["mean"] + c["median"])
            assert (
                finite_positive(c["curvature_median"]) and 0 <= c["share_above_2_over_alpha"] <= 1
            )
    assert "**Reading.**" in (quick_run / "maml_stability.md").read_text()


def test_largest_curvature_is_the_top_hessian_eigenvalue():
    from maml_stability import largest_curvature
    from torch.func import functional_call, jacrev

    from metalearn_lib import MLP, SinusoidTasks, parameters_of

    model = MLP(hidden=(6,), seed=0).double()
    theta = {n: p.detach() for n, p in parameters_of(model).items()}
    batch = SinusoidTasks().sample(
        3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    got = largest_curvature(model, theta, batch, iterations=300)
    flat = torch.cat([p.flatten() for p in theta.values()])

    def loss(v, x, y):
        params, i = {}, 0
        for name, p in theta.items():
            params[name], i = v[i : i + p.numel()].view(p.shape), i + p.numel()
        return torch.nn.functional.mse_loss(functional_call(model, params, (x,)), y)

    for t in range(3):
        eigenvalues = torch.linalg.eigvalsh(
            jacrev(jacrev(loss))(flat, batch.support_x[t], batch.support_y[t])
        )
        top = eigenvalues[eigenvalues.abs().argmax()]
        assert got[t].item() == pytest.approx(top.item(), rel=1e-6)


@pytest.mark.slow
def test_speed_table_is_filled(quick_run):
    data = load(quick_run / "speed.json")
    assert data["tasks"] == 25 and data["shots"] == 10
    assert 5 in data["inner_steps"]
    for a in ALGORITHMS:
        assert set(data["results"][a]) == {str(k) for k in data["inner_steps"]}
        for row in data["results"][a].values():
            for key in ("batched_ms", "loop_ms", "speedup", "batched_cpu_ms", "loop_cpu_ms"):
                assert finite_positive(row[key]), (a, key)
            assert row["speedup"] == pytest.approx(row["loop_ms"] / row["batched_ms"])
    assert finite_positive(data["goal"]["min_speedup_from_5"])
    # Every algorithm's time per meta-step on the ConvNet (ANIL's speed-up over MAML).
    assert set(data["convnet"]) == set(ALGORITHMS)
    assert all(finite_positive(ms) for row in data["convnet"].values() for ms in row.values())


@pytest.mark.slow
def test_memory_table_is_filled_and_maml_grows(quick_run):
    data = load(quick_run / "memory.json")
    steps = data["inner_steps"]
    for a in ALGORITHMS:
        assert set(data["results"][a]) == {str(k) for k in steps}
        assert all(finite_positive(r["peak_bytes"]) for r in data["results"][a].values())
        assert set(data["fits"][a]) >= {"slope_bytes_per_step", "slope_bytes_per_step_per_task"}
    assert set(data["loop_maml"]) == {str(k) for k in steps}
    maml = [data["results"]["maml"][str(k)]["peak_bytes"] for k in steps]
    assert maml == sorted(maml) and maml[-1] > 2 * maml[0]  # grows with the inner steps
    assert data["fits"]["maml"]["slope_bytes_per_step_per_task"] > 0
    for table in ("imaml_cosine", "imaml_cosine_matched_lam"):  # iMAML's direction against MAML's
        assert set(data[table]) == {str(k) for k in steps}
        assert all(-1 <= c <= 1 for c in data[table].values())


@pytest.mark.slow
def test_variants_and_protonets_have_their_rows(quick_run):
    accuracy = load(quick_run / "classification.json")["accuracy_percent"]
    for method in (*ALGORITHMS, "pretrain", "protonet"):
        for shots in (1, 5):
            assert 0 <= accuracy[f"{method}_{shots}shot"]["mean"][0] <= 100, method
    sinusoid = load(quick_run / "sinusoid_accuracy.json")["results"]
    for variant in ("imaml", "anil", "metasgd", "mamlpp"):  # one seed in --quick, three in full
        assert set(sinusoid[f"{variant}_s0"]) == {"K5", "K10"}


@pytest.mark.slow
def test_directions_table_is_filled(quick_run):
    data = load(quick_run / "directions.json")
    for where in ("init", "trained"):
        for a in ("fomaml", "reptile"):
            rows = data["results"][where][a]
            assert set(rows) == {str(k) for k in data["inner_steps"]}
            for row in rows.values():
                assert -1.0 <= row["cosine_mean"] <= 1.0
                assert row["cosine_ci95"] >= 0


def test_quick_mode_refuses_the_committed_results_folder(capsys):
    import _common
    import speed

    with pytest.raises(SystemExit):
        speed.main(["--quick", "--out", str(_common.DEFAULT_OUT)])
    assert "overwrite" in capsys.readouterr().err


def test_index_links_are_rewritten_into_the_output_folder():
    import run_all

    text = "![a plot](speed_x.png) [json](speed.json) ![web](https://x/y.png) [anchor](#top)"
    assert run_all._relink(text, "benchmarks") == (
        "![a plot](benchmarks/speed_x.png) [json](benchmarks/speed.json) "
        "![web](https://x/y.png) [anchor](#top)"
    )


@pytest.mark.slow
def test_training_speed_fills_every_column_but_compiled(quick_run):
    data = load(quick_run / "training_speed.json")
    assert data["inner_steps"] == [1, 5, 10]
    for a in ALGORITHMS[:3]:
        for k in ("1", "5", "10"):
            row = data["results"][a][k]
            assert finite_positive(row["eager_now"]["ms"]) and finite_positive(row["loop"]["ms"])
            assert row["compiled"] == {"skipped": "skipped (--quick)"}  # compiling takes minutes
            before = row["eager_before"]
            # The baseline ran the old library (git archive of fa3ce7f), not this one.
            assert "not_available" in before or "baseline-" in before["library"]
            assert row["jax"].get("not_installed") or finite_positive(row["jax"]["ms"])
