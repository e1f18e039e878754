"""The stage's records own their files: ranking tables and summary.json, old files included."""

import json

import pytest

from ldm.data import Curation
from ldm.errors import RefGenError
from ldm.refgen.records import (
    LibraryOutcome,
    RankedCandidate,
    RankingTable,
    RefGenSummary,
    RunOutcome,
)

RANKED = {
    "library": "classic-control",
    "envs": ["classic-control/CartPole-v1", "classic-control/Pendulum-v1"],
    "ranking": [{"candidate": "a2c-8env", "points": 2}, {"candidate": "ppo-8env", "points": 0}],
    "ranking_by_action_kind": {"discrete": ["a2c-8env", "ppo-8env"], "continuous": ["ppo-8env"]},
    "final_returns": {"classic-control/CartPole-v1": {"a2c-8env": 400.5, "ppo-8env": 120.0}},
    "skipped": {"classic-control/CartPole-v1": {"sac": "SAC does not support discrete actions"}},
    "failed": {"rank-classic-control__Pendulum-v1-a2c-8env-s0": "worker died"},
}
UNRANKED = {
    "library": "toy-text",
    "ranking": [{"candidate": "ppo-8env", "points": None}],
    "note": "only 1 compatible candidates <= N=3: ranking skipped",
}
#: summary.json as the suite's first run wrote it (before fallbacks were listed)
OLD_SUMMARY = {
    "libraries": {
        "classic-control": {
            "ranking": ["sac-4env", "ppo-8env"],
            "ranking_by_action_kind": {"discrete": ["ppo-8env"]},
            "references": 3,
            "failed": [],
        }
    },
    "runs": {
        "cc__CartPole-v1-ppo-8env-s0-1": {
            "env_id": "classic-control/CartPole-v1",
            "verdict": "pass",
            "reasons": [],
            "final_return": 500.0,
        },
        "cc__CartPole-v1-ppo-8env-s1-2": {
            "env_id": "classic-control/CartPole-v1",
            "verdict": "fail",
            "reasons": ["not relabelled"],
        },
    },
}


@pytest.mark.parametrize("d", [RANKED, UNRANKED], ids=["ranked", "unranked"])
def test_ranking_table_reads_and_writes_its_file_unchanged(d, tmp_path):
    table = RankingTable.from_dict(json.loads(json.dumps(d)))
    assert table.to_dict() == d
    path = table.write(tmp_path)
    assert path == tmp_path / "refgen" / f"ranking-{d['library']}.json"
    assert json.loads(path.read_text()) == d
    assert RankingTable.load(tmp_path, d["library"]) == table


def test_ranking_table_order_is_the_planners_argument():
    table = RankingTable.from_dict(RANKED)
    assert table.ranking[0] == RankedCandidate("a2c-8env", 2)
    assert table.candidates == ["a2c-8env", "ppo-8env"]
    assert table.order() == {
        "*": ["a2c-8env", "ppo-8env"],
        "discrete": ["a2c-8env", "ppo-8env"],
        "continuous": ["ppo-8env"],
    }
    assert RankingTable.from_dict(UNRANKED).order() == {"*": ["ppo-8env"]}


def test_an_old_summary_loads_and_a_new_one_round_trips(tmp_path):
    old = RefGenSummary.from_dict(OLD_SUMMARY)
    assert old.fallbacks == {}
    assert old.libraries["classic-control"] == LibraryOutcome(
        ("sac-4env", "ppo-8env"), {"discrete": ("ppo-8env",)}, 3, ()
    )
    passed = old.runs["cc__CartPole-v1-ppo-8env-s0-1"]
    assert passed == RunOutcome("classic-control/CartPole-v1", Curation("pass", (), 500.0))
    assert old.to_dict() == {**OLD_SUMMARY, "fallbacks": {}}
    new = RefGenSummary(old.libraries, {"classic-control/CartPole-v1": ("r1",)}, old.runs)
    new.write(tmp_path)
    assert RefGenSummary.load(tmp_path) == new
    assert json.loads((tmp_path / "refgen" / "summary.json").read_text())["fallbacks"] == {
        "classic-control/CartPole-v1": ["r1"]
    }


def test_the_env_best_return_is_not_a_runs_figure_in_the_summary():
    run = RunOutcome("lib/E-v0", Curation("fail", ("below 95%",), 10.0, best_on_env=99.0))
    assert run.to_dict() == {
        "env_id": "lib/E-v0",
        "verdict": "fail",
        "reasons": ["below 95%"],
        "final_return": 10.0,
    }


def test_unknown_keys_and_missing_files_are_named(tmp_path):
    with pytest.raises(
        RefGenError, match=r"ranking table of 'toy-text' has unknown keys \['rank'\]"
    ):
        RankingTable.from_dict({**UNRANKED, "rank": 1})
    with pytest.raises(RefGenError, match=r"refgen summary has unknown keys \['extra'\]"):
        RefGenSummary.from_dict({**OLD_SUMMARY, "extra": 1})
    with pytest.raises(RefGenError, match="'lib/E-v0'.*verdict 'maybe'"):
        RunOutcome.from_dict({"env_id": "lib/E-v0", "verdict": "maybe", "reasons": []})
    with pytest.raises(RefGenError, match="summary.json does not exist; run `ldm refgen all`"):
        RefGenSummary.load(tmp_path)
