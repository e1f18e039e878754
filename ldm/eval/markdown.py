"""An evaluation's results as the README's Markdown tables: `ldm eval --markdown RESULTS`.

The tables a README quotes are printed from results.json, never typed by hand: the headline,
the aggregates (IQM with its 95% CI, reference- and expert-normalised), one row per library
(envs, references, LDM median and IQM, share >= 80%) and one row per env.

Owns: `markdown`. Reads `ldm.eval.results` and the report's row builders; must not import the
model, ldm.envs or the evaluation loop.
"""

from __future__ import annotations

from typing import Any

from ldm.eval.report import aggregate_rows, cell_text, library_rows
from ldm.eval.results import EvalResult
from ldm.eval.scores import headline

#: the per-env table's columns (a subset of the report's: what a README reader compares)
ENV_COLUMNS = ("env", "score %", "expert-normalised", "mean return", "reference stopped", "status")


def _table(rows: list[dict[str, Any]], cols: list[str] | tuple[str, ...]) -> str:
    """A GitHub Markdown table: numbers right-aligned, text left."""

    def numeric(c: str) -> bool:
        return any(isinstance(r.get(c), (int, float)) for r in rows)

    align = ["---:" if numeric(c) else "---" for c in cols]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join(align) + " |"]
    for r in rows:
        cells = (cell_text(r.get(c)).replace("|", "\\|") for c in cols)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: EvalResult, envs: bool = True) -> str:
    """The headline, the aggregates, the per-library table and (with `envs`) the per-env one."""
    from ldm.eval.report import env_rows

    parts = [f"{headline(results.summary)}."]
    agg = aggregate_rows(results)
    if agg:
        parts.append(_table(agg, list(agg[0])))
    libs = library_rows(results)
    parts.append(_table(libs, list(libs[0]) if libs else ["library"]))
    if envs:
        rows = env_rows(results)
        parts.append(_table(rows, ENV_COLUMNS))
    return "\n\n".join(parts) + "\n"
