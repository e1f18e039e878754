"""The wide run's smoke version: configs/wide.toml's rules (envs by `[refgen.select]`, budgets by
`[refgen.auto_budget]`) on a handful of libraries with tiny caps and a tiny model. It proves
the plumbing: the rule's pick reaches the store (every modality), every run ends by the rule
and says why, training consumes every picked env and evaluation scores them, the reason
beside each reference. Not the quality: curation is overridden so that every reference counts.
"""

from pathlib import Path

import pytest
import tomllib

from ldm.data import Store
from ldm.envs import env_spaces
from ldm.eval import EvalConfig, evaluate
from ldm.refgen import RefGenConfig, run_refgen
from ldm.refgen.autobudget import AutoBudget, StopReason
from ldm.refgen.plan import envs_by_library
from ldm.refgen.selection import SelectionRule
from tests.pipeline.smoke import train_seeing_envs

WIDE = Path(__file__).parents[2] / "configs" / "wide.toml"
#: a handful of libraries: vector, discrete and image observations, discrete and continuous
#: actions (the fast test below checks that this seed's pick has them all)
SMOKE_RULE = SelectionRule(libraries=("classic-control", "toy-text", "minigrid"), per_library=3)
#: tiny caps: every run ends within seconds, by the rule (3,000 transitions: 3 episodes of
#: MountainCarContinuous, 999 steps each)
#: and the stage's shared hours, as the wide run has them (3 min on 2 workers)
SMOKE_BUDGET = AutoBudget(max_transitions=3000, max_seconds=30.0, min_transitions=500,
                          min_episodes=10, check_every=500, stage_hours=0.05,
                          min_seconds=5.0)  # fmt: skip


def smoke_config() -> RefGenConfig:
    return RefGenConfig(select=SMOKE_RULE, auto_budget=SMOKE_BUDGET, candidates=["a2c"],
                        top_n=1, seeds=1, workers=2, check_episodes=1)  # fmt: skip


def test_wide_config_picks_by_rule_budgets_by_rule_and_the_smoke_pick_has_every_modality():
    from ldm.pipeline.config import PipelineConfig
    from ldm.pipeline.plan import plan

    raw = tomllib.loads(WIDE.read_text())["refgen"]
    assert "envs" not in raw and "budgets" not in raw and "rank_budgets" not in raw
    p = plan(PipelineConfig.load(WIDE))
    assert p.selection is not None and p.auto_budget is not None
    assert len(p.selection.envs) >= 150 and len(p.selection.picked) >= 40
    assert {e for lib in p.libraries.values() for e in lib.envs} == set(p.selection.envs)
    assert PipelineConfig.load(WIDE, "gpu").refgen == PipelineConfig.load(WIDE).refgen
    grouped = envs_by_library(smoke_config())
    specs = [env_spaces(e) for ids in grouped.values() for e in ids]
    assert set(grouped) == set(SMOKE_RULE.libraries)
    assert {o.kind for o, _ in specs} == {"continuous", "discrete", "image"}
    assert {a.kind for _, a in specs} == {"discrete", "continuous"}


@pytest.mark.slow
@pytest.mark.long
def test_wide_smoke_the_rules_pick_reaches_store_training_and_evaluation(tmp_path, monkeypatch):
    cfg = smoke_config()
    envs = [e for ids in envs_by_library(cfg).values() for e in ids]
    store_dir = str(tmp_path / "store")
    summary = run_refgen(cfg, store_dir, progress=False)
    store = Store(store_dir)
    by_env = {e.env_id: r for r, e in store.runs().items()}
    assert set(by_env) == set(envs), sorted(set(envs) - set(by_env))
    reasons = set(StopReason.__args__)
    for env_id, rid in by_env.items():
        obs, act = env_spaces(env_id)
        reader = store.open_run(rid)
        assert reader.read(0, "obs", 0, 2).shape[1:] == obs.value_shape, env_id
        assert reader.read(0, "actions", 0, 2).shape[1:] == act.value_shape, env_id
        stop = reader.meta.extra["stop"]  # every run ended by the rule and says why
        assert stop["reason"] in reasons - {"budget", "budget: episodes", "budget: limit"}
        assert stop["transitions"] <= SMOKE_BUDGET.max_transitions
        store.update_meta(rid, {"curation": {"verdict": "pass", "reasons": []}})
    assert {r.stop for r in summary.runs.values()} <= reasons and summary.stop_counts()
    # every job started with its share of the stage's hours as its seconds cap
    from ldm.refgen.runner import JobManifest

    caps = [r.job.seconds_cap for r in JobManifest(store_dir).results.values()]
    assert caps and all(5.0 <= c <= 30.0 for c in caps), caps

    # the envs of every window the training loop consumed, and their kinds
    final, seen, kinds = train_seeing_envs(monkeypatch, store_dir, tmp_path / "train", 20)
    assert {o for o, _ in kinds} == {"continuous", "discrete", "image"}
    assert {a for _, a in kinds} == {"discrete", "continuous"}

    from ldm.model import LDMPolicy

    ecfg = EvalConfig(rollouts=1, episodes=1, episode_limit_factor=0.25)
    res = evaluate(LDMPolicy.from_pretrained(final), envs, store, ecfg, progress=False)
    assert {e.env_id for e in res.envs} == set(envs)
    for e in res.envs:
        assert e.status != "failed" and e.mean_return is not None, e
        assert e.reference_stop == store.open_run(by_env[e.env_id]).meta.extra["stop"]["reason"]
