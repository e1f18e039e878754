"""`ldm eval --markdown`: the README's tables printed from results.json (ldm/eval/markdown.py)."""

from __future__ import annotations

from ldm.cli import main as ldm_main
from ldm.eval import EvalConfig, write_report
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import summarise

SCORES = {"a/A-v0": 50.0, "a/B-v0": 90.0, "a/C-v0": 110.0, "a/D-v0": 400.0, "b/E-v0": 85.0}
ENVS = tuple(
    EnvResult(env, "ok", library=env.split("/")[0], episodes=20, mean_return=s / 10,
              normalised_score=s, reference_run=f"r-{env}", first10=0.0, last10=10.0,
              reference_stop="learned")
    for env, s in SCORES.items()
) + (EnvResult("b/F-v0", "failed", library="b", error="worker died | twice"),)  # fmt: skip


def _results(tmp_path) -> str:
    res = EvalResult("ldm", "no-store", EvalConfig(), ENVS, summarise(ENVS))
    write_report(res, tmp_path / "report")
    return str(tmp_path / "report")


def _rows(text: str, first: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header starts with `first`, by their first cell."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first} |"))
    head = [c.strip() for c in lines[start].strip("|").split(" | ")]
    rows = {}
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip().strip("|").split(" | ")]
        rows[cells[0]] = dict(zip(head, cells))
    return rows


def test_the_library_table_has_median_iqm_and_share(tmp_path, capsys):
    assert ldm_main(["eval", "--markdown", _results(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("4 of 5 envs at >= 80% of reference")
    libs = _rows(out, "library")
    a = libs["a"]
    assert a["envs"] == "4" and a["envs >= 80%"] == "3" and a["median score %"] == "100.0"
    # the interquartile mean drops the lowest and highest quarter: (90 + 110) / 2
    assert a["IQM score %"] == "100.0" and a["share >= 80% (%)"] == "75.0"
    assert libs["b"]["scorable"] == "1" and libs["b"]["envs"] == "2"
    envs = _rows(out, "env")
    assert set(envs) == set(SCORES) | {"b/F-v0"}
    assert envs["a/D-v0"]["score %"] == "400.0" and envs["a/D-v0"]["reference stopped"] == "learned"
    # a pipe inside a cell is escaped, so the row keeps its columns
    assert "worker died \\| twice" in out and len(envs["b/F-v0"]) == 6
