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
    markdown: str | None = None,
    random_scores: bool = False,
    refresh: bool = False,
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
        markdown: A results.json (or its directory): print its headline, aggregates, per-library and per-env tables as Markdown (the README's tables) and exit.
        random_scores: Print the random and expert scores of --envs (measuring the random
            ones that are not cached for this env version, by the protocol) and exit.
        refresh: With --random-scores: measure again even where a cached score exists.
        cfg: Protocol settings.
    """
    from ldm.eval.report import write_report
    from ldm.eval.scores import headline

    if compare or markdown:
        return _print_results(compare, markdown)
    if random_scores:
        return _print_random_scores(envs, cfg.backend, refresh)
    if store is None:
        raise SystemExit(
            "ldm eval: --store is required (the reference runs give the normalisation anchors)"
        )
    from ldm.data import Store
    from ldm.eval.evaluate import evaluate, require_in_store

    opened = Store(store, create=False)
    if envs:  # before the model loads: a typo or an env outside the store fails at once
        require_in_store(opened, envs)
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
        policy, envs, opened, cfg, library=library, video_dir=Path(out) / "clips", per_env=per_env
    )
    if policy is not None and checkpoint is not None and Path(checkpoint).is_dir():
        results = replace(results, checkpoint=str(checkpoint))  # the report's training curves
    paths = write_report(results, out, title=_title(retrieval, references))
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


def _print_results(compare: tuple[str, str] | None, markdown: str | None) -> int:
    """`--compare A B` (two results side by side) or `--markdown RESULTS` (the README's
    tables) from results.json files: nothing is evaluated."""
    from ldm.eval.results import EvalResult

    if compare:
        from ldm.eval.report import compare_text

        a, b = (EvalResult.load(p) for p in compare)
        print(compare_text(a, b))
    else:
        from ldm.eval.markdown import markdown as to_markdown

        print(to_markdown(EvalResult.load(markdown)), end="")
    return 0


def _title(retrieval: int | None, references: bool) -> str:
    """The report's title: what played."""
    if retrieval is not None:
        return f"1-nearest-neighbour retrieval over {retrieval} reference episodes per env"
    return "Reference policies" if references else "LDM evaluation"


def _print_random_scores(envs: list[str] | None, backend: str, refresh: bool) -> int:
    """`ldm eval --random-scores --envs ...`: each env's random score (cached or measured now)
    beside its published expert score and source."""
    from ldm.eval.experts import expert_score
    from ldm.eval.random_scores import cache_root, random_scores

    if not envs:
        raise SystemExit("ldm eval --random-scores: name the envs with --envs ENV [ENV ...]")
    scores = random_scores(envs, backend=backend, refresh=refresh, progress=True)
    print(f"{'env':<48} {'random':>10} {'episodes':>8} {'expert':>10}  source")
    for env_id, s in scores.items():
        ex = expert_score(env_id)
        rnd = "-" if s.mean is None else f"{s.mean:.3f}"
        expert = "-" if ex is None else f"{ex.expert:.3f}"
        source = "no published expert score" if ex is None else f"{ex.source}: {ex.ref}"
        print(f"{env_id:<48} {rnd:>10} {s.episodes:>8} {expert:>10}  {source}")
        if s.error:
            print(f"   not measured: {s.error.splitlines()[0]}")
    print(f"cache: {cache_root()}")
    return 1 if any(s.error for s in scores.values()) else 0
