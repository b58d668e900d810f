"""Few-shot image classification: 5-way 1-shot and 5-shot accuracy on rotated 8x8 digits.

MAML, FOMAML and Reptile meta-train the same small conv net (``ConvNet``, 3
blocks of 32 filters with batch-statistics batch norm) on the 28
meta-training classes of ``digits_meta_split()`` (scikit-learn's 8x8 digits,
each rotation a class; digits 2, 5 and 7 held out), separately for 1-shot
and 5-shot episodes. The baseline trains one ordinary 28-way classifier on
all meta-training images, then, on each test episode, gets a new zero head
and is fine-tuned (all layers) on the support set. Every model is tested on
the same 600 episodes of unseen classes: query accuracy after 0, 1, 3, 5 and
10 steps, mean and 95% confidence interval.

    python benchmarks/classification.py            # full, into docs/benchmarks
    python benchmarks/classification.py --quick    # seconds, into a temp folder
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch.nn.functional as F  # noqa: E402
from _common import (  # noqa: E402
    algorithm_color,
    algorithm_labels,
    machine,
    md_table,
    parse_args,
    quick_note,
    savefig,
    setup,
    write_json,
    write_md,
)

from metalearn_lib import (  # noqa: E402
    ALGORITHMS,
    ConvNet,
    FewShotTasks,
    PooledClasses,
    accuracy,
    digits_meta_split,
    evaluate,
    meta_train,
    pretrain,
)
from metalearn_lib.protonets import evaluate_protonet, train_protonet  # noqa: E402
from metalearn_lib.variants import AnnealedStepWeights  # noqa: E402

NAME = "classification"
WAYS = 5
SHOTS = (1, 5)
ALGORITHMS = tuple(ALGORITHMS)  # the registry's algorithms when this script starts
LABELS = algorithm_labels() | {"pretrain": "pretrain + fine-tune", "protonet": "ProtoNets"}
COLORS = {a: algorithm_color(a) for a in ALGORITHMS} | {"pretrain": "black", "protonet": "grey"}
METHODS = (*ALGORITHMS, "pretrain", "protonet")
# Reptile paper (Nichol et al. 2018, arXiv:1803.02999 v3), Table 2, Omniglot 5-way 1-shot (%).
PAPER_OMNIGLOT_1SHOT = {"maml": 98.7, "fomaml": 98.3, "reptile": 97.68}

FULL = dict(
    hidden=32,
    iterations=800,
    meta_batch_size=8,
    queries=3,
    meta_lr=3e-3,
    inner_lr=0.4,
    inner_steps={"maml": 1, "fomaml": 1, "reptile": 3, "imaml": 3, "mamlpp": 3},
    pretrain_iterations=1000,
    pretrain_lr=3e-3,
    baseline_lr=0.1,
    test_episodes=600,
    test_queries=5,
    test_steps=(0, 1, 3, 5, 10),
)
QUICK = dict(
    FULL,
    hidden=8,
    iterations=8,
    pretrain_iterations=8,
    test_episodes=40,
    test_steps=(0, 1, 3),
)


def _data():
    train_classes, test_classes = digits_meta_split()
    return train_classes, FewShotTasks(train_classes, ways=WAYS), FewShotTasks(test_classes, WAYS)


def _test(model, params, test_tasks, settings: dict, shots: int, lr: float, algorithm=None) -> dict:
    ev = evaluate(
        model,
        params,
        test_tasks,
        num_tasks=settings["test_episodes"],
        shots=shots,
        queries=settings["test_queries"],
        steps=settings["test_steps"],
        inner_lr=lr,
        seed=2024,
        loss_fn=F.cross_entropy,
        metric_fn=accuracy,
        algorithm=algorithm,  # each algorithm adapts its own way (ANIL: the head only, ...)
    )
    return {
        "steps": list(ev.steps),
        "mean": [100 * m for m in ev.metric_mean],
        "ci95": [100 * c for c in ev.metric_ci95],
    }


def run_meta(settings: dict, shots: int) -> dict:
    """Meta-train and test MAML, FOMAML and Reptile for one number of shots."""
    setup()
    _, train_tasks, test_tasks = _data()
    net = ConvNet(out_features=WAYS, hidden=settings["hidden"], norm="batch", seed=0)
    results: dict = {"histories": {}, "accuracy": {}, "train_seconds": {}}
    for algorithm in ALGORITHMS:
        key = f"{algorithm}_{shots}shot"
        print(f"meta-training {key} ...", flush=True)
        start = time.perf_counter()
        params, history = meta_train(
            net,
            train_tasks,
            algorithm=algorithm,
            inner_steps=settings["inner_steps"].get(algorithm, 1),
            inner_lr=settings["inner_lr"],
            meta_lr=settings["meta_lr"],
            meta_batch_size=settings["meta_batch_size"],
            shots=shots,
            queries=settings["queries"],
            iterations=settings["iterations"],
            seed=shots,
            loss_fn=F.cross_entropy,
            options=_options(algorithm, settings),
            progress=False,
        )
        results["train_seconds"][key] = time.perf_counter() - start
        results["histories"][key] = history.smoothed(50)
        results["accuracy"][key] = _test(
            net, params, test_tasks, settings, shots, settings["inner_lr"], algorithm
        )
    return results


def _options(algorithm: str, settings: dict) -> dict:
    """Learned rates start at the inner lr; MAML++ anneals its step weights over half the run."""
    if algorithm == "metasgd":
        return {"init_lr": settings["inner_lr"]}
    if algorithm == "mamlpp":
        weights = AnnealedStepWeights(max(1, settings["iterations"] // 2))
        return {"step_weights": weights, "init_lr": settings["inner_lr"]}
    return {}


def run_protonet(settings: dict) -> dict:
    """ProtoNets: the same ConvNet body, trained episodically; nearest class mean at test."""
    setup()
    _, train_tasks, test_tasks = _data()
    net = ConvNet(out_features=WAYS, hidden=settings["hidden"], norm="batch", seed=0)
    results: dict = {"histories": {}, "accuracy": {}, "train_seconds": {}}
    for shots in SHOTS:
        key = f"protonet_{shots}shot"
        print(f"training {key} ...", flush=True)
        start = time.perf_counter()
        params, history = train_protonet(
            net,
            train_tasks,
            ways=WAYS,
            shots=shots,
            queries=settings["queries"],
            iterations=settings["iterations"],
            meta_batch_size=settings["meta_batch_size"],
            lr=settings["meta_lr"],
            seed=shots,
            progress=False,
        )
        results["train_seconds"][key] = time.perf_counter() - start
        results["histories"][key] = history.smoothed(50)
        ev = evaluate_protonet(
            net,
            params,
            test_tasks,
            ways=WAYS,
            num_tasks=settings["test_episodes"],
            shots=shots,
            queries=settings["test_queries"],
            seed=2024,
        )
        results["accuracy"][key] = {
            "steps": list(ev.steps),
            "mean": [100 * m for m in ev.metric_mean],
            "ci95": [100 * c for c in ev.metric_ci95],
        }
    return results


def run_baseline(settings: dict) -> dict:
    """Pretrain one classifier on all meta-training classes; fine-tune it on test episodes."""
    setup()
    train_classes, _, test_tasks = _data()
    net = ConvNet(out_features=WAYS, hidden=settings["hidden"], norm="batch", seed=0)
    big = ConvNet(out_features=len(train_classes), hidden=settings["hidden"], norm="batch", seed=0)
    print("pretraining the baseline ...", flush=True)
    start = time.perf_counter()
    pretrained, history = pretrain(
        big,
        PooledClasses(train_classes),
        iterations=settings["pretrain_iterations"],
        batch_size=4,
        shots=32,
        lr=settings["pretrain_lr"],
        loss_fn=F.cross_entropy,
        progress=False,
    )
    results: dict = {
        "histories": {"pretrain": history.smoothed(50)},
        "train_seconds": {"pretrain": time.perf_counter() - start},
        "accuracy": {},
    }
    start_params = net.transfer(pretrained)
    for shots in SHOTS:
        results["accuracy"][f"pretrain_{shots}shot"] = _test(
            net, start_params, test_tasks, settings, shots, settings["baseline_lr"]
        )
    return results


def run(settings: dict, quick: bool) -> dict:
    """Everything; the full run uses two processes (one per number of shots)."""
    jobs = [(run_meta, (settings, shots)) for shots in SHOTS] + [
        (run_baseline, (settings,)),
        (run_protonet, (settings,)),
    ]
    if quick:
        parts = [function(*arguments) for function, arguments in jobs]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
            futures = [pool.submit(function, *arguments) for function, arguments in jobs]
            parts = [future.result() for future in futures]
    results: dict = {"histories": {}, "accuracy": {}, "train_seconds": {}}
    for part in parts:
        for field in results:
            results[field].update(part[field])
    return results


def plots(results: dict, settings: dict, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    links = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, shots in zip(axes, SHOTS):
        for method in METHODS:
            acc = results["accuracy"][f"{method}_{shots}shot"]
            if acc["steps"] == [0]:  # no adaptation steps (ProtoNets): a level line
                ax.axhline(acc["mean"][0], color=COLORS[method], ls="--", label=LABELS[method])
                continue
            ax.errorbar(
                acc["steps"],
                acc["mean"],
                yerr=acc["ci95"],
                marker="o",
                capsize=3,
                label=LABELS[method],
                color=COLORS[method],
            )
        ax.axhline(100 / WAYS, color="gray", ls=":", lw=1, label="chance")
        ax.set(
            xlabel="adaptation steps on the support set",
            title=f"{WAYS}-way {shots}-shot",
            ylim=(0, 100),
        )
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("query accuracy on unseen classes (%)")
    axes[1].legend(fontsize="small", loc="lower right")
    links.append(savefig(fig, out, f"{NAME}_accuracy.png"))

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for key, curve in results["histories"].items():
        if key == "pretrain":
            continue
        if key.startswith("protonet"):
            method, shots = "protonet", key.split("_")[1]
            ax.plot(curve, label=f"{LABELS[method]}, {shots}", color="grey", ls=":")
            continue
        method, shots = key.split("_")
        ax.plot(curve, label=f"{LABELS[method]}, {shots}", ls="-" if shots == "1shot" else "--")
    ax.set(
        xlabel="meta-training iteration",
        ylabel="query loss after adaptation (running mean)",
        title="Meta-training on the 28 training classes",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    links.append(savefig(fig, out, f"{NAME}_training.png"))
    return links


def markdown(results: dict, settings: dict, links: list[str], quick: bool, wall: float) -> str:
    best_steps = settings["test_steps"]
    rows = []
    for method in METHODS:
        row = [LABELS[method]]
        for shots in SHOTS:
            acc = results["accuracy"][f"{method}_{shots}shot"]
            for k in (1, best_steps[-1]):
                i = acc["steps"].index(k) if k in acc["steps"] else 0  # ProtoNets: no steps
                row.append(f"{acc['mean'][i]:.1f} ± {acc['ci95'][i]:.1f}")
        row.append(PAPER_OMNIGLOT_1SHOT.get(method, "-"))
        rows.append(row)
    last = best_steps[-1]
    headers = [
        "method",
        "1-shot, 1 step",
        f"1-shot, {last} steps",
        "5-shot, 1 step",
        f"5-shot, {last} steps",
        "paper: Omniglot 1-shot",
    ]
    train_rows = [[key, f"{seconds:.0f}"] for key, seconds in results["train_seconds"].items()]
    return f"""## Few-shot classification: rotated 8x8 digits, 5-way

{quick_note(quick)}
Query accuracy (%) on **{settings["test_episodes"]} test episodes of classes never seen in
meta-training** (mean ± 95% confidence interval; chance is 20%), after adapting on each episode's
support set with plain gradient descent. Data: scikit-learn's 8x8 handwritten digits
with 90/180/270-degree rotations as extra classes; digits 2, 5 and 7 (12 classes) are
the meta-test classes, the other 28 classes meta-train. Network: `ConvNet`, 3 blocks of
{settings["hidden"]} filters, batch norm with batch statistics (transductive, as in the MAML
code). MAML, FOMAML, ANIL and Meta-SGD: 1 inner step, Reptile, iMAML and MAML++: 3 (with
one step Reptile is plain training; MAML++ anneals its multi-step loss weights to the last
step over the first half of the run); each adapts at test time its own way (ANIL the
head only, Meta-SGD and MAML++ with their learned rates, iMAML on its proximal problem),
inner lr {settings["inner_lr"]}, Adam {settings["meta_lr"]}, {settings["iterations"]}
iterations of {settings["meta_batch_size"]} episodes, {settings["queries"]} query images per
class, trained separately for 1 and 5 shots. Baseline: one 28-way classifier trained
on all meta-training images ({settings["pretrain_iterations"]} Adam steps of 128 images),
then a new zero head and fine-tuning of all layers on the support set (lr
{settings["baseline_lr"]}). Test: lr {settings["inner_lr"]} for the meta-learned
initializations. ProtoNets (Snell et al. 2017): the same ConvNet body (its head unused),
trained episodically with the same iterations, episodes and Adam rate; a query image goes
to the class whose mean support embedding is nearest (no adaptation steps, so both step
columns show the same number).

{md_table(headers, rows)}

For context only, the last column is the Reptile paper's Omniglot 5-way 1-shot accuracy
(Nichol et al. 2018, arXiv:1803.02999 v3, Table 2; the Reptile number is its transductive
variant). **The dataset differs**: Omniglot has 1,623 characters with 20 drawings each at
28x28 pixels and the papers train for tens of thousands of iterations; these are 40
classes of 8x8 digits from 13 writers, trained for minutes on a CPU. Compare the methods
with each other here, not with the paper.

{links[0]}

{links[1]}

Training time (wall seconds; two runs at a time, one torch thread each, on a shared 2-core
machine):

{md_table(["run", "seconds"], train_rows)}

Total wall time {wall / 60:.1f} min.
"""


def main(argv=None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    setup()
    settings = QUICK if args.quick else FULL
    start = time.perf_counter()
    results = run(settings, args.quick)
    wall = time.perf_counter() - start
    links = plots(results, settings, args.out)
    data = {
        "machine": machine(),
        "quick": args.quick,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
        "ways": WAYS,
        "accuracy_percent": results["accuracy"],
        "train_seconds": results["train_seconds"],
        "paper_omniglot_5way_1shot_percent": PAPER_OMNIGLOT_1SHOT,
        "wall_seconds": wall,
    }
    write_json(args.out, NAME, data)
    write_md(args.out, NAME, markdown(results, settings, links, args.quick, wall))
    print(f"wrote {args.out / (NAME + '.json')} and {NAME}.md in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
