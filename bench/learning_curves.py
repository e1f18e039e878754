"""Per-env learning curves of a finished training run: held-out loss and accuracy by step.

Reads OUT/metrics.jsonl (`val/loss/<env>`, `val/accuracy/<env>` every `val_every` steps) and
validates the run's saved checkpoints whose step the log lacks (runs trained before the final
step was validated) on the same held-out windows, with training's own `validate`. Per env:
the curve, and the trend: `saturated` (accuracy >= 97% and loss < 0.05 at the last step),
`improving` (loss down >= 5% over the second half of training) or `plateau`.
`--png` draws the loss curves (continuous-action envs apart from the others).

`--quick` without `--train`: a 6-step tiny run on a synthetic store (plumbing only).
Last line: one JSON object, env -> {steps, loss, accuracy, trend}.
"""

import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402
from data import ACT, VEC, record  # noqa: E402

from ldm.data import Store, WindowSampler  # noqa: E402
from ldm.model import LDMPolicy  # noqa: E402
from ldm.train import TrainConfig, train  # noqa: E402
from ldm.train.step import validate  # noqa: E402

LOSS, ACC = "val/loss/", "val/accuracy/"


def logged(train_dir: Path) -> dict[int, dict[str, float]]:
    """step -> the validation scalars metrics.jsonl holds for it."""
    out: dict[int, dict[str, float]] = {}
    for line in (train_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "val/accuracy" in row:
            out[row["step"]] = row
    return out


def validate_checkpoints(train_dir: Path, skip: set[int]) -> dict[int, dict[str, float]]:
    """Training's `validate` on every saved checkpoint (and final) whose step is not in `skip`."""
    dirs = sorted(train_dir.glob("checkpoints/step-*")) + [train_dir / "final"]
    todo = {}
    for d in dirs:
        step = (
            json.loads((train_dir / "done.json").read_text())["step"]
            if d.name == "final"
            else int(d.name[5:])
        )
        if step not in skip and (d / "model.safetensors").exists():
            todo[step] = d
    if not todo:
        return {}
    tc = json.loads(next(train_dir.glob("checkpoints/step-*/train_config.json")).read_text())
    cfg = SimpleNamespace(
        val_batches=tc["val_batches"], micro_batch=tc["micro_batch"], seed=tc["seed"]
    )
    store = Store(tc["store"], create=False)
    # the store as it was trained on: runs added after the final model would change the draw
    written = (train_dir / "final" / "model.safetensors").stat().st_mtime
    runs = [r for r, e in store.runs(curated_only=True).items() if (e.committed or 0) < written]
    val = WindowSampler(store, tc["window"], tc["weighting"], runs=runs, holdout="val")
    out = {}
    for step, d in sorted(todo.items()):
        run = SimpleNamespace(
            cfg=cfg, val=val, model=LDMPolicy.from_pretrained(d), device=torch.device("cpu")
        )
        out[step] = validate(run)  # the fields of a TrainRun that validate() reads
    return out


def trend(steps: list[int], loss: list[float], acc: list[float]) -> str:
    """`saturated`, `improving` or `plateau` (see the module docstring)."""
    if acc[-1] >= 0.97 and loss[-1] < 0.05:
        return "saturated"
    half = next(i for i, s in enumerate(steps) if s >= steps[-1] / 2)
    return "improving" if loss[-1] <= 0.95 * loss[half] else "plateau"


def curves(rows: dict[int, dict[str, float]]) -> dict[str, dict]:
    steps = sorted(rows)
    envs = sorted(k[len(ACC) :] for k in rows[steps[-1]] if k.startswith(ACC))
    out = {}
    for env in envs:
        s = [t for t in steps if ACC + env in rows[t]]
        loss = [rows[t][LOSS + env] for t in s]
        acc = [rows[t][ACC + env] for t in s]
        out[env] = {"steps": s, "loss": loss, "accuracy": acc, "trend": trend(s, loss, acc)}
    return out


def draw(envs: dict[str, dict], continuous: set[str], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 5.5), sharex=True)
    for ax, cont in zip(axes, (True, False), strict=True):
        ax.set_prop_cycle(color=plt.cm.tab20.colors)
        for env, c in envs.items():
            if (env in continuous) == cont:
                ax.plot(c["steps"], c["loss"], marker=".", lw=1, label=_label(env))
        ax.set_title(("continuous" if cont else "discrete") + " actions: held-out loss (nats)")
        ax.set_xlabel("training step")
        if ax.lines:
            ax.legend(fontsize=6, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    axes[0].axhline(6.93, color="grey", ls=":", lw=1)  # a uniform guess over 1024 bins
    axes[0].set_ylim(0, 7.5)
    axes[1].set_yscale("log")
    fig.savefig(png, dpi=80, bbox_inches="tight")  # the legends sit below the axes


def _label(env: str) -> str:
    """`library/name`, shortened (two libraries may hold an env of the same name)."""
    parts = env.split("/")
    return f"{parts[0][:10]}/{parts[-1][:18]}"


def measure(train_dir: Path, png: str | None) -> dict[str, dict]:
    """The curves of a finished run (its log and its checkpoints); draws them if `png`."""
    rows = logged(train_dir)
    rows.update(validate_checkpoints(train_dir, set(rows)))
    envs = curves(rows)
    if png:
        card = json.loads((train_dir / "final" / "config.json").read_text())["card"]
        store = Store(card["training"]["store"], create=False)
        continuous = {
            e.env_id
            for r, e in store.runs(curated_only=True).items()
            if store.open_run(r).act_spec.kind == "continuous"
        }
        draw(envs, continuous, Path(png))
    return envs


def main() -> None:
    a = args(__doc__, extra=_options)
    if a.train:
        report({"envs": measure(Path(a.train), a.png)})
        return
    if not a.quick:
        raise SystemExit("pass --train OUT (a finished training run), or --quick")
    with tempfile.TemporaryDirectory() as d:  # plumbing: a tiny run on a synthetic store
        store = Store(Path(d) / "store")
        record(store, "bench/Vec-v0", VEC, ACT, 600)
        cfg = TrainConfig(
            store=str(store.path),
            out=str(Path(d) / "run"),
            preset="ldm-tiny",
            model={"context": 32},
            window=32,
            steps=6,
            batch_size=8,
            micro_batch=8,
            val_every=4,
            val_batches=1,
            checkpoint_every=3,
            num_workers=0,
            threads=1,
        )
        train(cfg, progress=False)
        report({"envs": measure(Path(cfg.out), a.png)})


def _options(p) -> None:
    p.add_argument("--train", help="a finished training run's OUT directory")
    p.add_argument("--png", help="write the loss curves here")


if __name__ == "__main__":
    main()
