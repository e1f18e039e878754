"""`ldm scale`: the paper's scaling study (its Figure 3) on one store.

Trains each preset on the same store with the same settings, keeps a checkpoint at each of
`points` evenly spaced steps, evaluates every checkpoint in the environments by the paper's
protocol and records the share of envs where the model reaches >= 80% of the reference.

    OUT/<preset>/          the training run of that preset (resumable, like `ldm train`)
    OUT/scale.json         {"presets": {preset: {"params", "points": [{step, transitions,
                            share_at_80, share_at_100, median_score}]}}}
    OUT/scale.png          share of envs >= 80% of reference against transitions seen

Rerunning the command resumes: finished presets and evaluated checkpoints are kept.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ldm.atomic import atomic_path, write_json_atomic
from ldm.errors import TrainError


def plot_scale(results: dict, path: Path) -> None:
    """Share of envs at >= 80% of reference against training transitions, one line per preset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for preset, r in results["presets"].items():
        pts = sorted(r["points"], key=lambda p: p["transitions"])
        if not pts:
            continue
        ax.plot(
            [p["transitions"] for p in pts],
            [100 * p["share_at_80"] for p in pts],
            marker="o",
            label=f"{preset} ({r['params'] / 1e6:.1f}M)",
        )
    ax.set_xlabel("training transitions seen")
    ax.set_ylabel("envs at >= 80% of reference (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Scaling: share of envs at >= 80% of reference")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def main(
    store: str,
    presets: str = "ldm-tiny,ldm-small",
    out: str = "runs/scale",
    steps: int = 600,
    points: int = 3,
    batch_size: int = 32,
    micro_batch: int = 32,
    lr: float = 1e-3,
    window: int | None = 128,
    context: int | None = 128,
    episodes: int = 5,
    rollouts: int = 1,
    config: str | None = None,
) -> int:
    """Train several presets on one store and evaluate each at checkpoints along training.

    Args:
        store: Trajectory store with curated runs (e.g. a pipeline's OUT/store).
        presets: Comma-separated model presets (see `ldm model summary`), smallest first.
        out: Output directory (one training run per preset, scale.json, scale.png).
        steps: Optimizer steps per preset (same data and settings for every preset).
        points: Checkpoints evaluated per preset, evenly spaced up to `steps`.
        batch_size: Global batch in windows.
        micro_batch: Windows per forward/backward (gradient accumulation fills the batch).
        lr: Learning rate (cosine schedule after 5% warm-up).
        window: Transitions per training window (None: the preset's context).
        context: Model context override for every preset (None: each preset's own).
        episodes: Evaluation episodes per env and rollout.
        rollouts: Evaluation rollouts per env.
        config: A TOML file whose [train] table gives the base training settings instead.
    """
    from ldm.data import Store
    from ldm.eval import EvalConfig, evaluate
    from ldm.model.config import PRESETS
    from ldm.model.config import preset as get_preset
    from ldm.model.policy import LDMPolicy, parameter_counts
    from ldm.train.checkpoint import checkpoint_dirs, checkpoint_step, load_state
    from ldm.train.config import TrainConfig
    from ldm.train.loop import train

    names = [p.strip() for p in presets.split(",") if p.strip()]
    unknown = [p for p in names if p not in PRESETS]
    if not names or unknown:
        raise TrainError(f"unknown preset(s) {unknown or presets!r}; known: {sorted(PRESETS)}")
    if points < 1 or steps < points:
        raise TrainError(f"points must be in 1..steps ({steps}), got {points}")
    st = Store(store, create=False)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    every = max(1, steps // points)
    if config:
        base = TrainConfig.from_toml(config)
    else:
        base = TrainConfig(
            batch_size=batch_size,
            micro_batch=micro_batch,
            lr=lr,
            window=window,
            schedule="cosine",
            warmup_steps=max(1, steps // 20),
            val_every=0,
        )
    overrides = dict(base.model)
    if context is not None:
        overrides["context"] = context
    result_path = root / "scale.json"
    results = json.loads(result_path.read_text()) if result_path.exists() else {"presets": {}}
    results["store"] = str(st.path)
    ecfg = EvalConfig(rollouts=rollouts, episodes=episodes)
    for preset in names:
        entry = results["presets"].setdefault(preset, {"points": []})
        entry["params"] = sum(parameter_counts(get_preset(preset, **overrides)).values())
        run_dir = root / preset
        cfg = replace(
            base,
            store=str(st.path),
            out=str(run_dir),
            preset=preset,
            model=overrides,
            steps=steps,
            checkpoint_every=every,
            keep_checkpoints=points + 1,
        )
        print(f"scale: training {preset} ({entry['params'] / 1e6:.1f}M parameters), {steps} steps")
        train(cfg)
        done = {p["step"] for p in entry["points"]}
        for ckpt in checkpoint_dirs(run_dir):
            step = checkpoint_step(ckpt)
            if step in done or step % every and step != steps:
                continue
            transitions = int(load_state(ckpt)["transitions"])
            policy = LDMPolicy.from_pretrained(ckpt)
            res = evaluate(policy, None, st, ecfg, progress=False)
            s = res["summary"]
            entry["points"].append(
                {
                    "step": step,
                    "transitions": transitions,
                    "share_at_80": s["share_at_80"],
                    "share_at_100": s["share_at_100"],
                    "median_score": s["median_score"],
                    "scores": {e["env_id"]: e.get("normalised_score") for e in res["envs"]},
                }
            )
            print(
                f"scale: {preset} step {step}: {s['at_80']}/{s['scorable']} envs >= 80% "
                f"(median {s['median_score']:.0f})"
            )
            write_json_atomic(result_path, results)
        entry["points"].sort(key=lambda p: p["step"])
        write_json_atomic(result_path, results)
        plot_scale(results, root / "scale.png")
    print(f"scale: {result_path} and {root / 'scale.png'}")
    return 0
