"""`ldm eval`: evaluate a checkpoint (or the store's references) and write the report.

Owns: the command's flags (`_EvalFlags`, EvalConfig's fields). Imports the model and the
evaluation inside `main`; must not import ldm.train or ldm.pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import tyro

from ldm.eval.config import EvalConfig


@dataclass
class _EvalFlags(EvalConfig):
    """EvalConfig as `ldm eval` flags: its `references` (evaluate the references beside the
    LDM, an `ldm run` setting) would clash with the command's own `--references`."""

    references: tyro.conf.Suppress[bool] = False


def main(
    checkpoint: tyro.conf.Positional[str | None] = None,
    store: str | None = None,
    envs: list[str] | None = None,
    library: str | None = None,
    out: str = "runs/eval",
    references: bool = False,
    retrieval: int | None = None,
    compare: tuple[str, str] | None = None,
    cfg: tyro.conf.OmitArgPrefixes[_EvalFlags] = _EvalFlags(),
) -> int:
    """Evaluate by the paper's protocol; writes results.json, threshold_curve.png, report.html.

    Args:
        checkpoint: LDM checkpoint directory (from `ldm train`).
        store: Trajectory store holding the reference runs (normalisation anchors).
        envs: Env ids to evaluate (default: every env with a curated run in the store).
        library: Only the envs of this library.
        out: Output directory.
        references: Evaluate the store's reference policies instead (they should score ~100).
        retrieval: Evaluate the 1-nearest-neighbour retrieval baseline over each env's first K reference episodes instead (ldm/eval/retrieval.py).
        compare: Two results.json files (or their directories) to set side by side.
        cfg: Protocol settings.
    """
    from ldm.eval.report import compare as compare_results
    from ldm.eval.report import write_report
    from ldm.eval.results import EvalResult
    from ldm.eval.scores import headline

    if compare:
        a, b = (EvalResult.load(p) for p in compare)
        print(f"{'env':<48} {'A':>8} {'B':>8} {'B-A':>8}")
        for r in compare_results(a, b):
            f = lambda x: "-" if x is None else f"{x:8.1f}"  # noqa: E731
            print(f"{r['env_id']:<48} {f(r['a'])} {f(r['b'])} {f(r['delta'])}")
        print(f"A: {headline(a.summary)}\nB: {headline(b.summary)}")
        return 0
    if store is None:
        raise SystemExit(
            "ldm eval: --store is required (the reference runs give the normalisation anchors)"
        )
    from ldm.eval.evaluate import evaluate

    policy, per_env = None, None
    if retrieval is not None:
        from ldm.eval.retrieval import retrieval_policy

        per_env = lambda env_id: retrieval_policy(store, env_id, retrieval)  # noqa: E731
    elif not references:
        if checkpoint is None:
            raise SystemExit(
                "ldm eval: give a CHECKPOINT, or --references to evaluate the reference policies"
            )
        from ldm.model import LDMPolicy

        policy = LDMPolicy.from_pretrained(checkpoint)
    results = evaluate(
        policy, envs, store, cfg, library=library, video_dir=Path(out) / "clips", per_env=per_env
    )
    if policy is not None and checkpoint is not None and Path(checkpoint).is_dir():
        results = replace(results, checkpoint=str(checkpoint))  # the report's training curves
    title = (
        f"1-nearest-neighbour retrieval over {retrieval} reference episodes per env"
        if retrieval is not None
        else "Reference policies"
        if references
        else f"LDM evaluation: {checkpoint}"
    )
    paths = write_report(results, out, title=title)
    if policy is not None and checkpoint is not None and Path(checkpoint).is_dir():
        from ldm.model.card import record_evaluation

        card = record_evaluation(checkpoint, results, headline(results.summary))
        if card is None:
            print("model card: kept (it reports an evaluation of more envs than this one)")
        else:
            print(f"model card: {card}")
    print(headline(results.summary))
    print(f"report: {paths['html']}")
    return 0
