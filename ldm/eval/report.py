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

from ldm.atomic import write_text_atomic
from ldm.disk import on_full_disk
from ldm.eval.report_media import media_sections
from ldm.eval.results import EvalResult
from ldm.eval.scores import headline, summarise

#: the report's columns, in order (the keys of `library_rows` and `env_rows`)
LIBRARY_COLUMNS = ("library", "envs", "with a reference", "scorable", "envs >= 80%",
                   "envs >= 100%", "median score %", "share >= 80% (%)")  # fmt: skip
ENV_COLUMNS = ("env", "score %", "reference's own score %", "expert-normalised",
               "reference's expert-normalised", "mean return", "random", "expert",
               "reference first10 / last10", "reference stopped", "held-out accuracy %",
               "episodes", "cut episodes",
               "status")  # fmt: skip

#: a score counts (the "checked" summary) only where the reference itself scores at least
#: this by the same protocol: elsewhere the anchors say little about the env
REFERENCE_FLOOR = 80.0


def attach_references(results: EvalResult, refs: EvalResult) -> EvalResult:
    """The results with the references' own protocol scores beside the LDM's, per env (both
    normalisations), the summary over the envs whose reference scores >= REFERENCE_FLOOR
    (`summary_checked`), and the references' aggregates beside the LDM's."""
    by_env = {e.env_id: e for e in refs.envs}
    envs = tuple(
        replace(
            e,
            reference_score=by_env[e.env_id].normalised_score,
            reference_cut_episodes=by_env[e.env_id].cut_episodes,
            reference_expert_normalised_score=by_env[e.env_id].expert_normalised_score,
        )
        if e.env_id in by_env
        else e
        for e in results.envs
    )
    own = tuple(a for a in results.aggregates if a.policy == results.policy)
    theirs = tuple(a for a in refs.aggregates if a.policy == "references")
    checked = [
        e for e in envs if e.reference_score is not None and e.reference_score >= REFERENCE_FLOOR
    ]
    return replace(
        results,
        envs=envs,
        summary_checked=summarise(checked),
        references_summary=refs.summary,
        aggregates=own + theirs,
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
    """One row per library: envs, references, scorable, at 80/100, median, interquartile mean
    (the mean of the middle half of its envs' scores, as `rliable` aggregates) and share >= 80."""
    from scipy.stats import trim_mean

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
            "iqm_score": float(trim_mean(r["scores"], 0.25)) if r["scores"] else None,
            "share_at_80": r["at_80"] / r["scorable"] if r["scorable"] else None,
        }
        for lib, r in sorted(rows.items())
    ]


#: the aggregate table's columns (report.html, `ldm eval --compare`)
AGGREGATE_COLUMNS = ["policy", "score", "IQM", "95% CI", "envs", "rollouts per env"]
#: how each normalisation's numbers read
_UNITS = {"reference": ("% of reference", 1), "expert": ("expert-normalised", 2)}


def aggregate_rows(results: EvalResult) -> list[dict[str, Any]]:
    """One row per aggregate: policy, normalisation, IQM and its 95% CI, envs, runs."""
    rows = []
    for a in results.aggregates:
        name, digits = _UNITS[a.normalisation]
        rows.append(
            {
                "policy": "LDM" if a.policy == "ldm" else "references",
                "score": name,
                "IQM": f"{a.iqm:.{digits}f}",
                "95% CI": f"[{a.ci_low:.{digits}f}, {a.ci_high:.{digits}f}]",
                "envs": a.envs,
                "rollouts per env": a.runs,
            }
        )
    return rows


def cell_text(x: Any, digits: int = 1) -> str:
    """A table cell's text (the HTML report's and the Markdown tables'): a percentage or
    count, `digits` decimals for floats, "-" for none."""
    return "-" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def number(x: float | int | None) -> str:
    """A return: four significant digits, so that small returns keep theirs (0.0123, -9.56),
    and large ones in full with thousands separators (6,863)."""
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def html_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """An HTML table of `rows` (already-formatted cells, or numbers shown with `cell_text`)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell_text(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * x


def library_rows(results: EvalResult) -> list[dict[str, Any]]:
    """`library_table` under the report's column names."""
    return [
        {
            "library": r["library"],
            "envs": r["envs"],
            "with a reference": r["references"],
            "scorable": r["scorable"],
            "envs >= 80%": r["at_80"],
            "envs >= 100%": r["at_100"],
            "median score %": r["median_score"],
            "IQM score %": r["iqm_score"],
            "share >= 80% (%)": _pct(r["share_at_80"]),
        }
        for r in library_table(results)
    ]


def _expert(x: float | None) -> str:
    """An expert-normalised score (a fraction: 1 = the published expert), two decimals."""
    return "-" if x is None else f"{x:.2f}"


def env_rows(results: EvalResult) -> list[dict[str, Any]]:
    """One row per env under the report's column names, returns to four significant digits."""
    return [
        {
            "env": e.env_id,
            "score %": e.normalised_score,
            "reference's own score %": e.reference_score,
            "expert-normalised": _expert(e.expert_normalised_score),
            "reference's expert-normalised": _expert(e.reference_expert_normalised_score),
            "mean return": number(e.mean_return),
            "random": number(e.random_score),
            "expert": number(e.expert_score),
            "reference first10 / last10": f"{number(e.first10)} / {number(e.last10)}"
            if e.first10 is not None
            else "-",
            "reference stopped": e.reference_stop,
            "held-out accuracy %": _pct(e.heldout_accuracy),
            "episodes": e.episodes,
            "cut episodes": e.cut_episodes,
            "status": e.status
            + (f": {e.error}" if e.error else "")
            + (f" ({e.note})" if e.note else ""),
        }
        for e in results.envs
    ]


def header(results: EvalResult, title: str) -> str:
    """The page's head: the title, what was evaluated (checkpoint, preset, steps,
    parameters), by which code and when, and the headline, once."""
    p = results.provenance
    facts = [
        ("checkpoint", results.checkpoint or ("-" if results.policy == "ldm" else "references")),
        ("preset", p.preset if p and p.preset else "-"),
        ("training steps", f"{p.steps:,}" if p and p.steps is not None else "-"),
        ("parameters", f"{p.parameters:,}" if p and p.parameters is not None else "-"),
        ("ldm commit", p.commit if p and p.commit else "-"),
        ("evaluated (UTC)", p.date if p else "-"),
    ]
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts
    )
    checked = ""
    if results.summary_checked is not None:
        c = results.summary_checked
        checked = (
            f"<p>Where the reference itself scores >= {REFERENCE_FLOOR:.0f} by this protocol: "
            f"{c.at_80} of {c.scorable} envs >= 80%, {c.at_100} >= 100%.</p>"
        )
    return (
        f"<h1>{html.escape(title)}</h1>"
        f'<table class="header"><tbody>{cells}</tbody></table>'
        f"<p><b>{html.escape(headline(results.summary))}</b></p>{checked}"
    )


def write_report(
    results: EvalResult, out: str | Path, title: str = "LDM evaluation", sections: str = ""
) -> dict[str, Path]:
    """Write threshold_curve.png, libraries.json, report.html and, last, results.json into
    `out`: where results.json is, the whole report is (a resumed `ldm run` keeps it). A full
    disk is a `DiskFullError` naming `out`, and leaves no new results.json. `sections`: more
    of the page (HTML), after the per-env table (e.g. the held-out envs' in-context table)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # the records twice (results.json, the page's tables) and the curve's PNG: about
    needed = 2 * len(json.dumps(results.to_dict())) + (256 << 10)
    kept = "results.json is written last: none was written; rerun to write the report"
    with on_full_disk(out, needed, "the evaluation report", kept):
        return _write_report(results, out, title, sections)


def _write_report(results: EvalResult, out: Path, title: str, sections: str) -> dict[str, Path]:
    png = threshold_curve(results, out / "threshold_curve.png")
    libs = library_table(results)
    (out / "libraries.json").write_text(json.dumps(libs, indent=1))
    img = base64.b64encode(png.read_bytes()).decode()
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:14px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}th{{background:#f3f3f3}}
table.header td{{text-align:left}}</style></head><body>
{header(results, title)}
<p>Protocol: {results.config.rollouts} rollouts x {results.config.episodes} episodes per env, context emptied at the start of each rollout and kept across its episodes, {f"deterministic ({results.config.decoding} under the action mask)" if results.config.deterministic else "sampled"} actions. Score = 100 x (R - first10) / (last10 - first10) of the env's best curated reference run.</p>
<img alt="threshold curve" src="data:image/png;base64,{img}" style="max-width:100%">
<h2>Per library</h2>{html_table(library_rows(results), list(LIBRARY_COLUMNS))}
<h2>Aggregate scores</h2>{html_table(aggregate_rows(results), AGGREGATE_COLUMNS)}
<p>IQM: the interquartile mean of per-rollout scores over envs, with its 95% stratified-bootstrap confidence interval (rliable; rollouts resampled within each env). Expert-normalised = (R - random) / (expert - random), as JAT reports it: 0 plays like uniform random actions under the action mask, 1 like the published expert (ldm/eval/experts.toml names each env's source).</p>
<h2>Per environment</h2>{html_table(env_rows(results), list(ENV_COLUMNS))}
<p>Held-out accuracy: the share of the reference's actions the LDM predicts on held-out reference episodes (last validation of training).</p>
<p>Cut episodes: those the protocol ended at its per-episode step limit ({results.config.episode_limit_factor} x the reference's longest episode), counted with their return so far.</p>
{sections}
{media_sections(results, out)}
</body></html>"""
    write_text_atomic(out / "report.html", page)
    results.save(out / "results.json")
    return {"results": out / "results.json", "png": png, "html": out / "report.html"}


def compare(a: EvalResult, b: EvalResult) -> list[dict[str, Any]]:
    """Per-env scores of two results side by side, with the delta (b - a): the paper's
    (`a`, `b`, `delta`) and the expert-normalised (`a_expert`, `b_expert`, `delta_expert`)."""
    ea, eb = {e.env_id: e for e in a.envs}, {e.env_id: e for e in b.envs}
    rows = []
    for env in sorted(set(ea) | set(eb)):
        row: dict[str, Any] = {"env_id": env}
        for suffix, field in (("", "normalised_score"), ("_expert", "expert_normalised_score")):
            x = getattr(ea[env], field) if env in ea else None
            y = getattr(eb[env], field) if env in eb else None
            row[f"a{suffix}"], row[f"b{suffix}"] = x, y
            row[f"delta{suffix}"] = None if x is None or y is None else y - x
        rows.append(row)
    return rows


def compare_text(a: EvalResult, b: EvalResult) -> str:
    """`ldm eval --compare`: per env the paper's score (%) and the expert-normalised one of A
    and B with their deltas, then each side's headline and aggregates (IQM, 95% CI)."""

    def f(x: float | None, digits: int) -> str:
        return f"{'-':>8}" if x is None else f"{x:8.{digits}f}"

    lines = [f"{'env':<48} {'A %':>8} {'B %':>8} {'B-A':>8} {'A exp':>8} {'B exp':>8} {'B-A':>8}"]
    for r in compare(a, b):
        lines.append(
            f"{r['env_id']:<48} {f(r['a'], 1)} {f(r['b'], 1)} {f(r['delta'], 1)} "
            f"{f(r['a_expert'], 2)} {f(r['b_expert'], 2)} {f(r['delta_expert'], 2)}"
        )
    for name, res in (("A", a), ("B", b)):
        lines.append(f"{name}: {headline(res.summary)}")
        for row in aggregate_rows(res):
            lines.append(
                f"   {row['policy']:<10} {row['score']:<17} IQM {row['IQM']} "
                f"95% CI {row['95% CI']} over {row['envs']} envs"
            )
    return "\n".join(lines)
