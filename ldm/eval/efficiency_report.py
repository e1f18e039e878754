"""The held-out envs' pages: the zero-shot/in-context table and the data-efficiency curves.

`heldout_section` is the held-out table (score, a rollout's first and last episodes, the
in-context gain; the two kinds apart) that the held-out stage's report.html carries;
`write_efficiency_report` writes the sweep's adapt.json, curves.png (score against K per env,
one line per learner, the zero-shot score and the 80% line beside them) and report.html (the
verdict, the curves, the table, forgetting, and the held-out table again).

Owns the pages. Imports matplotlib (inside `curves`), ldm.eval's records and report helpers;
must not import torch, ldm.model, ldm.train or ldm.pipeline.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from ldm.atomic import write_text_atomic
from ldm.eval.adaptation import HeldoutReport
from ldm.eval.efficiency import EfficiencyReport
from ldm.eval.report import html_table

#: each learner's line in the curves: label and colour
STYLE = {
    "finetune": ("pretrained LDM, fine-tuned", "#1f5fa8"),
    "scratch": ("same model from scratch", "#d9822b"),
    "retrieval": ("1-nearest-neighbour retrieval", "#2b9348"),
    "finetune-backbone": ("fine-tuned, pretrained transformer only", "#7b2cbf"),
    "finetune-io": ("fine-tuned, pretrained encoder and head only", "#9d0208"),
}
HELDOUT_COLUMNS = ["env", "kind", "score %", "first episodes %", "last episodes %", "gain"]


def heldout_section(report: HeldoutReport) -> str:
    """The held-out table as HTML: one row per env, then one per kind."""
    rows = [
        {"env": e.env_id, "kind": e.kind, "score %": e.score, "first episodes %": e.first,
         "last episodes %": e.last, "gain": e.gain}
        for e in report.envs
    ]  # fmt: skip
    kinds = [
        {"kind": k.kind, "envs": k.envs, "scorable": k.scorable,
         "median score %": k.median_score, "mean score %": k.mean_score,
         "median gain": k.median_gain, "mean gain": k.mean_gain}
        for k in report.kinds
    ]  # fmt: skip
    span = report.envs[0].span if report.envs else 0
    return (
        "<h2>Held-out envs: zero-shot and in context</h2>"
        f"<p>Never trained on; played by the protocol with the context kept across a rollout's "
        f"episodes. First/last: the score of each rollout's first and last {span} episodes; "
        "gain = last - first (points of the reference's score).</p>"
        + html_table(rows, HELDOUT_COLUMNS)
        + html_table(
            kinds,
            [
                "kind",
                "envs",
                "scorable",
                "median score %",
                "mean score %",
                "median gain",
                "mean gain",
            ],
        )  # fmt: skip
    )


def _on_scale(value: float, scores: list[float]) -> bool:
    """Whether a line at `value` keeps the panel readable: within twice the cells' own span
    of them."""
    lo, hi = min(scores), max(scores)
    span = max(hi - lo, 1.0)
    return lo - 2 * span <= value <= hi + 2 * span


def curves(report: EfficiencyReport, path: Path) -> Path:
    """Score against K reference episodes, one panel per held-out env."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env_ids = sorted({c.env_id for c in report.cells})
    cols = min(4, max(1, len(env_ids)))
    rows = max(1, math.ceil(len(env_ids) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), dpi=110, squeeze=False)
    for ax, env_id in zip(axes.flat, env_ids):
        for learner in report.learners:
            label, color = STYLE[learner]
            points = [(k, report.score(env_id, k, learner)) for k in report.ks]
            xs = [k for k, s in points if s is not None]
            ax.plot(xs, [s for _, s in points if s is not None], "o-", color=color, label=label)
        zero = report.zero_shot.get(env_id)
        shown = [s for c in report.cells if c.env_id == env_id and (s := c.score) is not None]
        if zero is not None and _on_scale(zero, [*shown, 80.0]):
            ax.axhline(zero, color="#1f5fa8", ls=":", lw=1, label="pretrained LDM, zero-shot")
        elif zero is not None:  # a reference that barely improved: 4.4M% would flatten the rest
            ax.text(0.02, 0.95, f"zero-shot {zero:.3g}% (off the scale)", transform=ax.transAxes,
                    fontsize=7, color="#1f5fa8", va="top")  # fmt: skip
        ax.axhline(80, color="#999", ls="--", lw=0.8, label="80% of reference")
        ax.set_xscale("log")
        ax.set_xticks(list(report.ks), [str(k) for k in report.ks])
        kind = next(c.kind for c in report.cells if c.env_id == env_id)
        ax.set_title(f"{env_id} ({kind})", fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("reference episodes K", fontsize=8)
        ax.set_ylabel("score (% of reference)", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(env_ids) :]:
        ax.axis("off")
    legend: dict[str, object] = {}  # every panel's entries once (a panel may lack a line)
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.08 if rows > 1 else 0.14, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def write_efficiency_report(
    report: EfficiencyReport, out: Path, heldout: HeldoutReport | None, title: str
) -> dict[str, Path]:
    """curves.png, report.html and, last, adapt.json into `out` (adapt.json: the whole page)."""
    out.mkdir(parents=True, exist_ok=True)
    png = curves(report, out / "curves.png")
    img = base64.b64encode(png.read_bytes()).decode()
    rows = report.rows()
    forgetting = [
        {"fine-tuned on": c.env_id, "K": c.k, "pretraining envs": c.forgetting.envs,
         ">= 80% before (%)": 100 * c.forgetting.before,
         ">= 80% after (%)": 100 * c.forgetting.after}
        for c in report.forgetting() if c.forgetting is not None
    ]  # fmt: skip
    v = report.verdict
    verdicts = [
        {"env": e.env_id, "kind": e.kind, f"fine-tuned > scratch at K={v.bar_k}": e.beats,
         f"fine-tuned K to {v.threshold:g}%": e.finetune_to_threshold,
         f"scratch K to {v.threshold:g}%": e.scratch_to_threshold, "fewer": e.fewer}
        for e in v.envs
    ] if v else []  # fmt: skip
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}th{{background:#f3f3f3}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p><b>Bar: {html.escape(v.why if v else "no verdict")}</b></p>
<p>Each learner gets the env's first K reference episodes: the pretrained LDM fine-tuned on
them, the same architecture trained from scratch on them, a 1-nearest-neighbour retrieval
agent over them. Scores are the protocol's (% of the env's reference), played from seeds no
training used.</p>
<img alt="data-efficiency curves" src="data:image/png;base64,{img}" style="max-width:100%">
<h2>Score against K</h2>{html_table(rows, list(rows[0]) if rows else ["env"])}
<h2>The bar, per env</h2>{html_table(verdicts, list(verdicts[0]) if verdicts else ["env"])}
<h2>Forgetting</h2>{html_table(forgetting, list(forgetting[0]) if forgetting else ["fine-tuned on"])}
{heldout_section(heldout) if heldout is not None else ""}
</body></html>"""
    write_text_atomic(out / "report.html", page)
    report.save(out / "adapt.json")
    return {"json": out / "adapt.json", "png": png, "html": out / "report.html"}
