"""The report's "see it act" sections: clips beside the scores, the references' learning
curves, and the training curves. `write_report` appends `media_sections(results, out)`.

- Clips: each env's LDM clip and, where both exist, its reference's clip side by side, with
  the score; an env without a clip says why (the worker's render note). Clip files sit beside
  report.html (`clips/`, `references/clips/`) and are linked relatively.
- Learning curves: per env, the episode returns of the curated reference runs over training
  (read from the store's run metadata), the reference run bold, its first and last 10% of
  episodes shaded and their means drawn: the anchors of the normalised score.
- Noisy curves (episode returns, the loss at every step) are drawn faint with their moving
  mean (`smooth`) over them.
- Training curves: train/loss, held-out val/accuracy and, when the train stage ran the periodic
  evaluation (`eval_every`), each env's score at those checkpoints and the share >= 80%, from
  the checkpoint's `metrics.jsonl`; without it the section says how to turn it on.
Figures are embedded as base64 PNG, as the threshold curve is.

Imports: ldm.data (the store), matplotlib, numpy; not torch, not the model.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ldm.data import Store
from ldm.eval.results import EvalResult


def attach_reference_clips(results: EvalResult, refs: EvalResult) -> EvalResult:
    """The results with each reference's clip (from its own evaluation) beside the LDM's."""
    return results.with_env_values(
        "reference_clip", {e.env_id: e.clip for e in refs.envs if e.clip}
    )


def media_sections(results: EvalResult, out: Path) -> str:
    """HTML of the clips, learning-curve and training-curve sections (empty parts omitted)."""
    parts = [clips_section(results, out)]
    if results.store and (Path(results.store) / "manifest.json").is_file():
        parts.append(learning_curves_section(results, Store(results.store, create=False)))
    if results.checkpoint:
        parts.append(training_curves_section(Path(results.checkpoint)))
    return "\n".join(p for p in parts if p)


# -- clips -------------------------------------------------------------------------------------
def _media(path: str | None, out: Path, label: str) -> str:
    if not path:
        return ""
    rel = html.escape(os.path.relpath(path, out))
    if path.endswith(".png"):  # an env that draws no frames: its episode as a plot
        return f'<img class="trace" src="{rel}" alt="{html.escape(label)}">'
    if path.endswith(".gif"):
        return f'<img class="clip" src="{rel}" alt="{html.escape(label)}">'
    return (
        f'<video class="clip" src="{rel}" controls muted loop autoplay playsinline '
        f'preload="auto" title="{html.escape(label)}"></video>'
    )


def clips_section(results: EvalResult, out: Path) -> str:
    """Per env: score, the LDM's clip and the reference's clip (or why there is none)."""
    envs = [e for e in results.envs if e.clip is not None or e.clip_note is not None]
    if not envs:
        return ""
    rows = []
    for e in envs:
        score = e.normalised_score
        ldm = _media(e.clip, out, f"{e.env_id}: LDM") or html.escape(
            f"no clip: {e.clip_note if e.clip_note is not None else 'not recorded'}"
        )
        ref = _media(e.reference_clip, out, f"{e.env_id}: reference") or "-"
        if (e.clip or "").endswith(".png") and e.clip_note:
            ldm += "<br><small>" + html.escape(f"no frames ({e.clip_note})") + "</small>"
        speed = f" (x{e.clip_speed} speed)" if e.clip_speed else ""
        ret = "-" if e.mean_return is None else f"{e.mean_return:.4g}"
        rows.append(
            f"<tr><td>{html.escape(e.env_id)}<br>score "
            f"<b>{'-' if score is None else f'{score:.0f}'}</b>, return "
            f"{ret}{speed}</td>"
            f"<td>{ldm}</td><td>{ref}</td></tr>"
        )
    return (
        "<h2>Watch it act</h2><p>The first episode of rollout 0 of each env, as evaluated; the "
        "reference policy's beside it where it was evaluated too.</p>"
        "<style>.clip{width:280px;height:auto;image-rendering:pixelated}.trace{width:360px}"
        ".clips th{text-align:center}.clips td{vertical-align:top}</style>"
        '<table class="clips"><thead><tr><th>env</th><th>LDM</th><th>reference</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# -- figures -------------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _grid(n: int, width: float = 3.3, height: float = 2.5) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=100)
    axes = np.atleast_1d(axes).ravel().tolist()
    for ax in axes[n:]:
        ax.axis("off")
    return fig, axes[:n]


def smooth(values: Any, window: int | None = None) -> np.ndarray:
    """A centred moving mean of a noisy curve (episode returns, the training loss), the
    window ~5% of its length (at least 1, odd) unless given; the ends average what they have,
    so the curve keeps its length and its first and last points stay near the data's."""
    v = np.asarray(values, dtype=np.float64)
    if window is None:
        window = max(1, v.size // 20) | 1
    if window <= 1 or v.size < 3:
        return v
    kernel = np.ones(window)
    total = np.convolve(v, kernel, mode="same")
    count = np.convolve(np.ones_like(v), kernel, mode="same")
    return total / count


def reference_curves(store: Store, env_id: str) -> list[tuple[str, list[float]]]:
    """(run id, episode returns over training) of an env's curated runs that recorded them."""
    return all_reference_curves(store, [env_id])[env_id]


def all_reference_curves(
    store: Store, env_ids: list[str]
) -> dict[str, list[tuple[str, list[float]]]]:
    """`reference_curves` of every env, reading the manifest once."""
    out: dict[str, list[tuple[str, list[float]]]] = {e: [] for e in env_ids}
    for run_id, entry in store.runs(curated_only=True).items():
        if entry.env_id in out:
            returns = store.open_run(run_id).meta.episode_returns
            if returns:
                out[entry.env_id].append((run_id, [float(x) for x in returns]))
    return out


#: envs whose learning curves the report draws, at most (one panel each: 1,000 envs made a
#: 62,500-pixel-high figure that took minutes); beyond it the lowest LDM scores are drawn
MAX_CURVES = 48


def learning_curves_section(results: EvalResult, store: Store) -> str:
    """The references' episode returns over training, their first/last 10% marked (of at
    most MAX_CURVES envs: those with the lowest scores, unscored ones first)."""
    from ldm.data.anchors import anchors, tenth

    curves = {}
    by_env = all_reference_curves(store, [e.env_id for e in results.envs])
    for e in results.envs:
        if by_env[e.env_id]:
            curves[e.env_id] = (by_env[e.env_id], e.reference_run)
    if not curves:
        return ""
    shown = ""
    if len(curves) > MAX_CURVES:
        score = {e.env_id: e.normalised_score for e in results.envs}
        lowest = sorted(curves, key=lambda k: (score[k] is not None, score[k] or 0.0))
        keep = set(lowest[:MAX_CURVES])
        shown = (
            f" Drawn for the {MAX_CURVES} of these {len(curves)} envs where the LDM scores "
            "lowest (unscored ones first)."
        )
        curves = {k: v for k, v in curves.items() if k in keep}
    fig, axes = _grid(len(curves))
    for ax, (env_id, (runs, best)) in zip(axes, curves.items()):
        for run_id, returns in runs:
            r = np.asarray(returns)
            x = np.arange(1, r.size + 1)
            main = run_id == best or (best is None and run_id == runs[0][0])
            color = "#1f5fa8" if main else "#aaa"
            ax.plot(x, r, lw=0.5, color=color, alpha=0.3)  # each episode, faint
            ax.plot(x, smooth(r), lw=1.6 if main else 0.8, color=color)
            if main:
                k = tenth(r.size)
                first, last = anchors(r)
                ax.axvspan(1, k, color="#d9822b", alpha=0.15)
                ax.axvspan(r.size - k + 1, r.size, color="#2b9348", alpha=0.15)
                ax.axhline(first, color="#d9822b", ls="--", lw=1, label=f"first10 {first:.3g}")
                ax.axhline(last, color="#2b9348", ls="--", lw=1, label=f"last10 {last:.3g}")
        ax.set_title(env_id, fontsize=8)
        ax.set_xlabel("training episode", fontsize=7)
        ax.set_ylabel("return", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return (
        "<h2>Reference learning curves</h2><p>Episode returns of each env's curated reference "
        "runs over their training, each episode faint and their moving mean (~5% of the "
        "episodes) drawn over them (the reference run in blue, other seeds in grey); the shaded "
        "first and last 10% of its episodes give the score's anchors first10 and last10."
        f"{shown}</p>"
        f'<img alt="reference learning curves" src="data:image/png;base64,{_png(fig)}" '
        'style="max-width:100%">'
    )


def _metrics(checkpoint: Path) -> list[dict[str, Any]]:
    for d in (checkpoint.parent, checkpoint.parent.parent):
        p = d / "metrics.jsonl"
        if p.exists():
            lines = p.read_text().splitlines()
            return [json.loads(x) for x in lines if x.strip()]
    return []


#: metrics.jsonl keys of the periodic evaluation's per-env scores (ldm/pipeline/hooks.py)
ENV_SCORE_PREFIX = "eval/score/"


def checkpoint_scores(rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Per env, (step, normalised score) of the periodic evaluations in the training log."""
    scores: dict[str, dict[int, float]] = {}
    for r in rows:
        for key, value in r.items():
            if key.startswith(ENV_SCORE_PREFIX) and value is not None:
                scores.setdefault(key[len(ENV_SCORE_PREFIX) :], {})[r["step"]] = value
    return {env: sorted(by_step.items()) for env, by_step in sorted(scores.items())}


def _env_scores_figure(scores: dict[str, list[tuple[int, float]]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.5, 3.4), dpi=100)
    for env, pts in scores.items():
        steps, values = zip(*pts)
        ax.plot(steps, values, marker="o", ms=3, lw=1.2, label=env)
    for mark, color in ((80, "#d9822b"), (100, "#2b9348")):
        ax.axhline(mark, color=color, ls="--", lw=1)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("score (% of reference)", fontsize=8)
    ax.set_title("env score at checkpoints (periodic evaluation)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return _png(fig)


def training_curves_section(checkpoint: Path) -> str:
    """Loss, held-out accuracy and env scores at checkpoints from the train stage's log."""
    rows = _metrics(checkpoint)
    series = {
        "train/loss": "training loss",
        "val/accuracy": "held-out step accuracy",
        "eval/share_at_80": "share of envs >= 80% (periodic eval)",
    }
    present = {k: v for k, v in series.items() if any(k in r for r in rows)}
    if not present:
        return ""
    fig, axes = _grid(len(present), width=4.0, height=2.6)
    for ax, (key, label) in zip(axes, present.items()):
        pts = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
        steps, values = zip(*pts)
        if len(pts) < 30:  # a few points (validations, periodic evaluations): each one shown
            ax.plot(steps, values, marker="o", ms=3, color="#1f5fa8")
        else:  # the loss at every logged step: faint, its moving mean over it
            ax.plot(steps, values, lw=0.5, color="#1f5fa8", alpha=0.3)
            ax.plot(steps, smooth(values), lw=1.4, color="#1f5fa8")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    scores = checkpoint_scores(rows)
    if scores:
        env_part = (
            "<p>Env score at checkpoints: the periodic evaluation during training (the protocol "
            "with 1 rollout and the train stage's <code>eval_episodes</code> per env, so noisier "
            "than the final evaluation above); dashed lines at 80 and 100.</p>"
            f'<img alt="env score at checkpoints" '
            f'src="data:image/png;base64,{_env_scores_figure(scores)}" style="max-width:100%">'
        )
    else:
        env_part = (
            "<p>No env scores at checkpoints: the train stage ran without periodic evaluation "
            "(set <code>eval_every</code> and <code>eval_episodes</code> in <code>[train]</code> "
            "to record them).</p>"
        )
    return (
        "<h2>Training curves</h2>"
        f'<img alt="training curves" src="data:image/png;base64,{_png(fig)}" style="max-width:100%">'
        + env_part
    )
