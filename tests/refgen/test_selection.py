"""ldm/refgen/selection.py: envs by rule over the real catalog, and the wide config's dry run."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ldm.envs import list_envs
from ldm.envs.library.catalog import load_catalog
from ldm.errors import RefGenError
from ldm.refgen import RefGenConfig
from ldm.refgen.candidates import load_pool
from ldm.refgen.plan import envs_by_library
from ldm.refgen.selection import SelectionRule, env_family, select_envs

ROOT = Path(__file__).parents[2]
POOL = load_pool(None, ["ppo-8env", "ppo-8env-cnn", "a2c-8env", "sac-4env"])


def test_families_are_ids_without_numbers_and_version():
    assert env_family("Foraging-8x8-2p-3f-v3") == "Foraging-#x#-#p-#f"
    assert env_family("Foraging-2s-8x8-2p-2f-coop-v3") == "Foraging-#s-#x#-#p-#f-coop"
    assert env_family("ALE/Breakout-v5") == "ALE/Breakout"
    # lbforaging's 960 variants are 4 families
    assert len({env_family(e.id.split("/", 1)[1]) for e in list_envs("lbforaging")}) == 4


def test_every_env_of_the_catalog_is_picked_or_excluded_with_a_reason():
    sel = select_envs(SelectionRule(per_library=4), POOL)
    envs = {e.id: e for e in list_envs()}
    out = {x.env_id: x for x in sel.excluded}
    assert set(sel.envs) | set(out) == set(envs) and not set(sel.envs) & set(out)
    assert all(envs[e].check_ok for e in sel.envs)  # only envs that pass their own checks
    assert all(len(ids) <= 4 for ids in sel.picked.values())
    # a library with >= 4 passing envs a candidate can train gives 4; fewer, all of them
    # (gym-lqr's unbounded actions: no SB3 candidate)
    untrainable = {e for e, x in out.items() if x.reason == "no candidate runs on its spaces"}
    assert "gym-lqr/LQR-v0" in untrainable
    passing = Counter(e.library for e in envs.values() if e.check_ok and e.id not in untrainable)
    assert {lib: len(ids) for lib, ids in sel.picked.items()} == {
        lib: min(n, 4) for lib, n in passing.items()
    }
    assert len(sel.envs) >= 150 and len(sel.picked) >= 40
    # gym-mtsim's step infos differ between two runs of one seed: out, and the reason says so
    assert {out[e.id].reason for e in list_envs("gym-mtsim")} == {"check: seeds do not reproduce"}
    assert sum(sel.exclusion_counts().values()) == len(sel.excluded)
    # a library of the rule with nothing picked says why
    assert sel.unpicked["gym-mtsim"] == "every env out: 6 check: seeds do not reproduce"
    # procgen seeds only at construction: picked since `reseed_by_reconstruction` (rand_seed)
    assert "procgen" in sel.picked
    assert set(sel.unpicked) | set(sel.picked) == set(load_catalog())
    # spread over families: lbforaging's 4 picks are its 4 families
    assert len({sel.families[e] for e in sel.picked["lbforaging"]}) == 4


def test_the_seed_draws_another_pick_by_the_same_rule_and_the_same_seed_the_same():
    a = select_envs(SelectionRule(per_library=3, select_seed=0), POOL)
    b = select_envs(SelectionRule(per_library=3, select_seed=0), POOL)
    c = select_envs(SelectionRule(per_library=3, select_seed=1), POOL)
    assert a.picked == b.picked
    assert a.picked != c.picked
    assert {lib: len(v) for lib, v in a.picked.items()} == {
        lib: len(v) for lib, v in c.picked.items()
    }


def test_a_rule_over_named_libraries_and_its_errors():
    rule = SelectionRule(libraries=("classic-control", "toy-text"), per_library=2)
    cfg = RefGenConfig(select=rule, candidates=["ppo-8env", "a2c-8env"])
    grouped = envs_by_library(cfg)
    assert set(grouped) == {"classic-control", "toy-text"}
    assert all(len(v) == 2 for v in grouped.values())
    assert RefGenConfig.from_dict({"select": {"libraries": ["toy-text"]}}).select.per_library == 250
    with pytest.raises(RefGenError, match=r"libraries \['nope'\] are not in the catalog"):
        select_envs(SelectionRule(libraries=("nope",)), POOL)
    with pytest.raises(RefGenError, match="per_library must be >= 1"):
        SelectionRule(per_library=0)
    with pytest.raises(RefGenError, match=r"\[refgen.select\] has unknown keys \['seed'\]"):
        RefGenConfig.from_dict({"select": {"seed": 3}})


def test_the_wide_dry_run_prints_the_pick_and_why_each_excluded_env_is_out():
    out = subprocess.run(
        [sys.executable, "-m", "ldm.cli", "run", str(ROOT / "configs/wide.toml"), "--dry-run"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    (head,) = [x for x in lines if x.startswith("selection: ")]
    envs, libs = int(head.split()[1]), int(head.split()[4])
    assert envs >= 150 and libs >= 40
    mtsim = "  out  gym-mtsim/crypto-hedge-v0: check: seeds do not reproduce (AssertionError"
    assert any(x.startswith(mtsim) for x in lines)
    assert sum(x.startswith("  out  ") for x in lines) == len(list_envs()) - envs
    assert lines[-1].startswith(f"plan: {envs} envs of {libs} libraries picked by rule")
    assert "runs end by rule" in lines[-1] and "[refgen.budgets]" not in out


def test_min_envs_fills_the_pick_from_libraries_over_their_cap_and_keeps_the_capped_pick():
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.selection import SelectionRule, select_envs

    pool = load_pool()
    libs = ("classic-control", "toy-text", "minigrid")
    base = select_envs(SelectionRule(libraries=libs, per_library=1), pool)
    assert len(base.envs) == 3
    filled = select_envs(SelectionRule(libraries=libs, per_library=1, min_envs=5), pool)
    assert len(filled.envs) == 5 and set(base.envs) <= set(filled.envs)
    assert max(len(ids) for ids in filled.picked.values()) == 2  # one more a library, in turn
    capped = {x.env_id for x in filled.excluded if x.reason == "over the per-library cap"}
    assert not capped & set(filled.envs)
    assert select_envs(SelectionRule(libraries=libs, per_library=1, min_envs=5), pool) == filled
