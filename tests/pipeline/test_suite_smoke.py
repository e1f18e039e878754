"""The suite's smoke version: the same envs as configs/suite.toml with tiny budgets and a tiny
model. It proves the plumbing (every env's transitions reach the store with the right shapes,
training consumes windows of every modality, evaluation scores every env with a reference),
not the quality: curation is overridden so that every reference counts."""

from pathlib import Path

import numpy as np
import pytest
import tomllib

from ldm.data import Store
from ldm.envs import env_spaces
from ldm.errors import ConfigError
from ldm.eval import EvalConfig, evaluate
from ldm.refgen import RefGenConfig, run_refgen
from tests.pipeline.smoke import train_seeing_envs

SUITE = Path(__file__).parents[2] / "configs" / "suite.toml"


def suite_envs() -> list[str]:
    return tomllib.loads(SUITE.read_text())["refgen"]["envs"]


def test_suite_config_covers_every_modality_and_its_dry_run_plans_every_env():
    from ldm.pipeline.config import PipelineConfig
    from ldm.pipeline.plan import plan

    envs = suite_envs()
    specs = [env_spaces(e) for e in envs]
    assert len(envs) >= 36 and len({e.split("/")[0] for e in envs}) >= 22
    assert {o.kind for o, _ in specs} == {"continuous", "discrete", "image"}
    assert {a.kind for _, a in specs} >= {"discrete", "continuous", "multi_discrete"}
    assert sum(o.kind == "image" for o, _ in specs) >= 5
    assert any(a.kind == "continuous" and a.flat_dim > 1 for _, a in specs)
    p = plan(PipelineConfig.load(SUITE))
    planned = {e for lib in p.libraries.values() for e in lib.envs}
    assert planned == set(envs)
    gpu = PipelineConfig.load(SUITE, "gpu")
    assert gpu.train["preset"] != PipelineConfig.load(SUITE).train["preset"]
    # the same rule as the auto profile's, with caps up to what the published experts trained
    # for (HalfCheetah's 1M transitions, Breakout's 2.5M) and a bigger model
    gpu_ref = gpu.stages.refgen
    auto_ref = PipelineConfig.load(SUITE, "auto").stages.refgen
    assert gpu_ref.auto_budget is not None and gpu_ref.auto_budget.max_transitions >= 2_500_000
    assert gpu_ref.candidates == auto_ref.candidates and list(gpu_ref.envs) == list(auto_ref.envs)
    assert not gpu_ref.budgets
    assert PipelineConfig.load(SUITE, "gpu", out="/elsewhere").store == "/elsewhere/store"
    # the auto profile: the same envs, every run's length by rule, no hand table read
    auto = PipelineConfig.load(SUITE, "auto").stages.refgen
    assert auto.auto_budget is not None and auto.auto_budget.max_seconds > 0
    assert not auto.budgets and not auto.rank_budgets and list(auto.envs) == list(envs)
    has = "the file has \\['auto', 'gpu', 'jax'\\]"
    with pytest.raises(ConfigError, match=f"no profile 'tpu'; {has}"):
        PipelineConfig.load(SUITE, "tpu")


@pytest.mark.slow
def test_suite_smoke_every_env_through_store_training_and_evaluation(tmp_path, monkeypatch):
    envs = suite_envs()
    store_dir = str(tmp_path / "store")
    # one candidate that runs on every action kind, one stream: a tiny budget still gives
    # whole episodes (min_episodes) on 2,000-step envs; each final policy plays one checked
    # episode (its deterministic actions, on a fresh env: the check of ldm/refgen/check.py)
    cfg = RefGenConfig(envs=envs, candidates=["a2c"], top_n=1, seeds=1, rank_budget=300,
                       train_budget=300, min_episodes=2, max_budget_factor=20, workers=2,
                       check_episodes=1)  # fmt: skip
    summary = run_refgen(cfg, store_dir, progress=False)
    store = Store(store_dir)
    runs = store.runs()
    by_env = {e.env_id: r for r, e in runs.items()}
    assert set(by_env) == set(envs), sorted(set(envs) - set(by_env))
    for env_id, rid in by_env.items():
        obs, act = env_spaces(env_id)
        reader = store.open_run(rid)
        o = reader.read(0, "obs", 0, 2)
        a = reader.read(0, "actions", 0, 2)
        assert o.shape[1:] == obs.value_shape, env_id
        assert a.shape[1:] == act.value_shape, env_id
        assert reader.has_reference_actions() and len(reader.meta.episode_returns) >= 2
        assert len(reader.meta.extra["check_returns"]) == 1, env_id
        # plumbing, not quality: every reference counts
        store.update_meta(rid, {"curation": {"verdict": "pass", "reasons": []}})
    assert len(summary.runs) == len(envs)

    # the envs of every window the training loop consumed, and their kinds
    final, seen, kinds = train_seeing_envs(monkeypatch, store_dir, tmp_path / "train", 25)
    assert {o for o, _ in kinds} == {"continuous", "discrete", "image"}
    assert {a for _, a in kinds} >= {"discrete", "continuous", "multi_discrete"}
    assert len(seen) >= 0.8 * len(envs)  # 400 windows drawn env-balanced

    from ldm.model import LDMPolicy

    # episodes cut at a quarter of the longest reference episode (they count with their return so
    # far): every env gets a return without playing out 2,000-step episodes
    ecfg = EvalConfig(rollouts=1, episodes=1, episode_limit_factor=0.25)
    res = evaluate(LDMPolicy.from_pretrained(final), envs, store, ecfg, progress=False)
    for e in res.envs:
        assert e.status != "failed" and e.mean_return is not None, e
        anchors_differ = not np.isclose(e.first10, e.last10)
        assert (e.normalised_score is not None) == anchors_differ, e
    refs = evaluate(None, envs, store, ecfg, progress=False)
    assert all(e.mean_return is not None for e in refs.envs), refs.envs
