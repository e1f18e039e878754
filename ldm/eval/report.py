"""The evaluation report: results.json, the threshold curve (the paper's Figure 2), a
per-library table and a self-contained report.html; and side-by-side comparison of two results.

Owns: the page and the references' scores beside the LDM's (`attach_references`); the
records it renders are ldm/eval/results.py's. Must not import: torch, ldm.model, ldm.train
(a report is written from results alone).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ldm.eval.report_media import media_sections
from ldm.eval.results import EvalResult
from ldm.eval.scores import headline, summarise

#: a score counts (the "checked" summary) only where the reference itself scores at least
#: this by the same protocol: elsewhere the anchors say little about the env
REFERENCE_FLOOR = 80.0


def attach_references(results: EvalResult, refs: EvalResult) -> EvalResult:
    """The results with the references' own protocol scores beside the LDM's, per env, and
    the summary over the envs whose reference scores >= REFERENCE_FLOOR (`summary_checked`)."""
    by_env = {e.env_id: e for e in refs.envs}
    envs = tuple(
        replace(
            e,
            reference_score=by_env[e.env_id].normalised_score,
            reference_cut_episodes=by_env[e.env_id].cut_episodes,
        )
        if e.env_id in by_env
        else e
        for e in results.envs
    )
    checked = [
        e for e in envs if e.reference_score is not None and e.reference_score >= REFERENCE_FLOOR
    ]
    return replace(
        results,
        envs=envs,
        summary_checked=summarise(checked),
        references_summary=refs.summary,
    )


def threshold_curve(results: EvalResult, path: Path, label: str = "") -> Path:
    """The paper's Figure 2 (envs at or above each score threshold), the references' curve
    dotted beside it when they were evaluated too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = results.summary.curve
    t, n = np.asarray(curve.thresholds), np.asarray(curve.envs_at_or_above)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.step(t, n, where="post", color="#1f5fa8", lw=2, label=label or "LDM")
    if results.references_summary is not None:
        ref = results.references_summary.curve
        ax.step(ref.thresholds, ref.envs_at_or_above, where="post", color="#888", lw=1.5,
                ls=":", label="references (same protocol)")  # fmt: skip
    scorable = results.summary.scorable
    for mark, color in ((80, "#d9822b"), (100, "#2b9348")):
        k = int(n[t == mark][0]) if (t == mark).any() else 0
        ax.axvline(mark, color=color, ls="--", lw=1, label=f"{k} of {scorable} envs >= {mark}%")
    ax.legend(loc="lower left", fontsize=8)  # counts in the legend: no labels overlap
    ax.set_xlabel("performance threshold (% of reference)")
    ax.set_ylabel("environments at or above")
    ax.set_title(f"Performance-threshold curve ({results.summary.scorable} scorable envs)")
    ax.set_ylim(0, max(1, results.summary.scorable) * 1.1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def library_table(results: EvalResult) -> list[dict[str, Any]]:
    """One row per library: envs, references, scorable, at 80/100, median and share >= 80."""
    rows: dict[str, dict[str, Any]] = {}
    for e in results.envs:
        r = rows.setdefault(
            e.library,
            {"envs": 0, "references": 0, "scorable": 0, "at_80": 0, "at_100": 0, "scores": []},
        )
        r["envs"] += 1
        r["references"] += e.first10 is not None
        s = e.normalised_score
        if s is not None:
            r["scorable"] += 1
            r["at_80"] += s >= 80
            r["at_100"] += s >= 100
            r["scores"].append(s)
    return [
        {
            "library": lib,
            **{k: v for k, v in r.items() if k != "scores"},
            "median_score": float(np.median(r["scores"])) if r["scores"] else None,
            "share_at_80": r["at_80"] / r["scorable"] if r["scorable"] else None,
        }
        for lib, r in sorted(rows.items())
    ]


def _fmt(x: Any, digits: int = 1) -> str:
    return "-" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(
    results: EvalResult, out: str | Path, title: str = "LDM evaluation"
) -> dict[str, Path]:
    """Write threshold_curve.png, libraries.json, report.html and, last, results.json into
    `out`: where results.json is, the whole report is (a resumed `ldm run` keeps it)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    png = threshold_curve(results, out / "threshold_curve.png")
    libs = library_table(results)
    (out / "libraries.json").write_text(json.dumps(libs, indent=1))
    env_rows = [
        {
            "env_id": e.env_id,
            "episodes": e.episodes,
            "score %": e.normalised_score,
            "mean return": e.mean_return,
            "reference (first10 / last10)": f"{_fmt(e.first10)} / {_fmt(e.last10)}"
            if e.first10 is not None
            else "-",
            "reference score %": e.reference_score,
            "reference stopped": e.reference_stop,
            "held-out accuracy %": None if e.heldout_accuracy is None else 100 * e.heldout_accuracy,
            "cut": e.cut_episodes,
            "status": e.status
            + (f": {e.error}" if e.error else "")
            + (f" ({e.note})" if e.note else ""),
        }
        for e in results.envs
    ]
    img = base64.b64encode(png.read_bytes()).decode()
    checked = (
        f"<p>Where the reference itself scores >= {REFERENCE_FLOOR:.0f} by this protocol: "
        f"<b>{html.escape(headline(results.summary_checked))}</b></p>"
        if results.summary_checked is not None
        else ""
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:14px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}th{{background:#f3f3f3}}</style></head><body>
<h1>{html.escape(title)}</h1><p><b>{html.escape(headline(results.summary))}</b></p>{checked}
<p>Protocol: {results.config.rollouts} rollouts x {results.config.episodes} episodes per env, context emptied at the start of each rollout and kept across its episodes, {f"deterministic ({results.config.decoding} under the action mask)" if results.config.deterministic else "sampled"} actions. Score = 100 x (R - first10) / (last10 - first10) of the env's best curated reference run.</p>
<img alt="threshold curve" src="data:image/png;base64,{img}" style="max-width:100%">
<h2>Per library</h2>{_table(libs, ["library", "envs", "references", "scorable", "at_80", "at_100", "median_score", "share_at_80"])}
<h2>Per environment</h2>{_table(env_rows, ["env_id", "score %", "reference score %", "mean return", "reference (first10 / last10)", "reference stopped", "held-out accuracy %", "episodes", "cut", "status"])}
<p>Held-out accuracy: the share of the reference's actions the LDM predicts on held-out reference episodes (last validation of training).</p>
<p>Cut: episodes the protocol ended at its per-episode step limit ({results.config.episode_limit_factor} x the reference's longest episode), counted with their return so far.</p>
{media_sections(results, out)}
</body></html>"""
    (out / "report.html").write_text(page)
    results.save(out / "results.json")
    return {"results": out / "results.json", "png": png, "html": out / "report.html"}


def compare(a: EvalResult, b: EvalResult) -> list[dict[str, Any]]:
    """Per-env scores of two results side by side, with the delta (b - a)."""
    sa = {e.env_id: e.normalised_score for e in a.envs}
    sb = {e.env_id: e.normalised_score for e in b.envs}
    rows = []
    for env in sorted(set(sa) | set(sb)):
        x, y = sa.get(env), sb.get(env)
        rows.append(
            {"env_id": env, "a": x, "b": y, "delta": None if x is None or y is None else y - x}
        )
    return rows
