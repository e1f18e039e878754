"""`[heldout.adapt]`: the data-efficiency sweep of `ldm run` (fine-tuned, from scratch, 1-NN
retrieval at each K), resumable per cell, with forgetting and the bar's verdict."""

import json

import pytest
import torch

import ldm.eval as E
from ldm.data import Store
from ldm.errors import ConfigError, EvalError
from ldm.eval.efficiency import Cell, EfficiencyReport, Forgetting, verdict
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.retrieval import NearestNeighbourPolicy
from ldm.eval.scores import summarise
from ldm.model import LDMPolicy, preset
from ldm.pipeline.adapt_config import AdaptConfig
from ldm.pipeline.run import PipelineConfig, run_pipeline
from ldm.pipeline.state import PipelineState
from ldm.pipeline.status_cli import main as status
from tests.data.conftest import DISC, VEC, record

SEEN, UNSEEN_ENV, UNSEEN_LIB = "a/Seen-v0", "a/Other-v0", "b/New-v0"
TEXT = f"""name = "h"
out = "{{out}}"
[refgen]
envs = ["{SEEN}"]
[train]
preset = "ldm-tiny"
model = {{{{ context = 32 }}}}
window = 32
micro_batch = 4
[eval]
rollouts = 2
episodes = 10
video = false
references = false
[heldout]
envs = ["{UNSEEN_ENV}"]
libraries = ["b"]
[heldout.adapt]
ks = [1, 3, 50]
steps = {{steps}}
batch_size = 4
lr = 0.003
seed = 7000
bar_k = 3
"""

# --- the verdict on crafted numbers -----------------------------------------------------


def _cells(spec):
    """spec: env -> (kind, {learner: {k: score}})."""
    return [
        Cell(env, kind, k, learner, score)
        for env, (kind, curves) in spec.items()
        for learner, scores in curves.items()
        for k, score in scores.items()
    ]


def _eight(beating: int, fewer: int):
    """8 envs of 4 libraries, both kinds: fine-tuning beats scratch at K=5 on the first
    `beating` and reaches 80 at K=5 (scratch at K=20) on the first `fewer`."""
    spec = {}
    for i in range(8):
        env = f"lib{i % 4}/Env{i}-v0"
        kind = "unseen library" if i % 2 else "unseen env"
        ft5 = 85.0 if i < fewer else 60.0
        sc5 = ft5 - 10 if i < beating else ft5 + 5
        spec[env] = (
            kind,
            {"finetune": {1: 10.0, 5: ft5, 20: 90.0}, "scratch": {1: 0.0, 5: sc5, 20: 90.0}},
        )
    return _cells(spec)


def test_the_bar_is_met_at_75_and_50_percent_and_not_below():
    v = verdict(_eight(beating=6, fewer=4))
    assert (v.beats_share, v.fewer_share, v.libraries, v.passed) == (0.75, 0.5, 4, True)
    assert v.why.startswith("met: fine-tuned beats scratch at K=5 on 75%")
    v = verdict(_eight(beating=5, fewer=4))
    assert not v.passed and "fine-tuned beats scratch on 62% (< 75%)" in v.why
    v = verdict(_eight(beating=6, fewer=3))
    assert not v.passed and "fewer episodes to 80% on 38% (< 50%)" in v.why


def test_episodes_to_the_threshold_never_reached_by_scratch_counts_as_more():
    cells = _cells(
        {
            "a/X-v0": ("unseen env", {"finetune": {1: 50.0, 5: 81.0}, "scratch": {1: 0.0, 5: 70.0}}),
            "b/Y-v0": ("unseen library", {"finetune": {1: 50.0, 5: 70.0}, "scratch": {1: 0.0, 5: 79.0}}),
            "b/Z-v0": ("unseen library", {"finetune": {1: 90.0, 5: 90.0}, "scratch": {1: 85.0, 5: 95.0}}),
        }
    )  # fmt: skip
    by = {e.env_id: e for e in verdict(cells).envs}
    assert (by["a/X-v0"].finetune_to_threshold, by["a/X-v0"].scratch_to_threshold) == (5, None)
    assert by["a/X-v0"].fewer and by["a/X-v0"].beats
    assert by["b/Y-v0"].fewer is False and by["b/Y-v0"].beats is False  # neither reaches 80
    assert by["b/Z-v0"].fewer is False and by["b/Z-v0"].beats is False  # both at K=1
    v = verdict(cells)
    assert not v.passed and "3 envs measured at K=5 (< 8)" in v.why and "2 libraries (< 4)" in v.why


def test_one_kind_only_or_unscored_cells_do_not_pass():
    cells = [
        Cell(c.env_id, "unseen env", c.k, c.learner, c.score) for c in _eight(8, 8)
    ]  # every env of a seen library
    assert "one kind only" in verdict(cells).why
    missing = [
        c if c.k != 5 or c.learner != "scratch" else Cell(c.env_id, c.kind, 5, "scratch", None, "x")
        for c in _eight(8, 8)
    ]
    v = verdict(missing)
    assert v.beats_share is None and "0 envs measured at K=5" in v.why


def test_report_round_trip_and_table(tmp_path):
    cells = _eight(6, 4)
    cells[0] = Cell(
        cells[0].env_id, cells[0].kind, 1, "finetune", 10.0, forgetting=Forgetting(3, 1.0, 2 / 3)
    )
    report = EfficiencyReport.build(
        cells, {c.env_id: 5.0 for c in cells}, (1, 5, 20), ("finetune", "scratch"), 5, 80.0
    )
    again = EfficiencyReport.load(report.save(tmp_path / "adapt.json"))
    assert again == report
    table = again.table()
    assert "finetune K=5" in table.splitlines()[0] and "zero-shot" in table.splitlines()[0]
    assert "envs >= 80% 100% before, 67% after" in table
    assert table.splitlines()[-1] == f"bar: {report.verdict.why}"


@pytest.mark.parametrize(
    "table, message",
    [
        ("ks = [5, 5]", "distinct integers"),
        ("ks = [0, 5]", "distinct integers"),
        ('learners = ["finetune", "knn"]', "choose from"),
        ("forget_k = 7", "forget_k 7 is not one of ks"),
        ("seed = 1000", "seed 1000 is an \\[eval\\] seed already"),
        ("stepz = 3", "unknown keys \\['stepz'\\]"),
    ],
)
def test_the_table_is_checked(table, message, tmp_path):
    path = tmp_path / "p.toml"
    key = table.split(" =")[0]  # the line of the same key in the table gives way to it
    lines = TEXT.format(out=tmp_path / "o", steps=2).splitlines()
    path.write_text("\n".join([x for x in lines if not x.startswith(f"{key} =")] + [table]))
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.load(path)
    assert AdaptConfig.from_table({"ks": [20, 1, 5]}).ks == (1, 5, 20)


# --- the sweep, end to end on tiny data ---------------------------------------------------


class Killed(Exception):
    """Stands for the process dying in the middle of a cell."""


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    """A pipeline whose references, training and evaluation are done (a tiny store and model),
    and an `evaluate` that records who played, on which seeds, and scores by learner."""
    out = tmp_path / "run"
    store = Store(out / "store")
    for i, env in enumerate((SEEN, UNSEEN_ENV, UNSEEN_LIB)):
        record(store, env, VEC, DISC, steps=120, streams=2, seed=i)  # 6 episodes to train on
    state = PipelineState(out)
    for stage in ("refgen", "train"):
        state.mark_done(stage, 1.0)
    torch.manual_seed(0)
    LDMPolicy(preset("ldm-tiny", context=32)).save_pretrained(out / "train" / "final")
    config = tmp_path / "p.toml"
    config.write_text(TEXT.format(out=out, steps=2))
    played = []
    kill = {"at": None}

    def fake_evaluate(policy, env_ids, store, cfg, per_env=None, **kw):
        who = "retrieval" if policy is None else "ldm"
        if per_env is not None:
            assert isinstance(per_env(env_ids[0]), NearestNeighbourPolicy)
        played.append((who, tuple(env_ids), cfg.seed))
        if kill["at"] is not None and len(played) == kill["at"]:
            raise Killed
        score = {"retrieval": 30.0, "ldm": 90.0}[who]
        if len(played) == kill.get("fail_at"):  # the env's worker was lost
            envs = tuple(EnvResult(e, "failed", error="worker died") for e in env_ids)
            return EvalResult("ldm", "store", cfg, envs, summarise(envs))
        envs = tuple(
            EnvResult(e, "ok", returns=((1.0,) * 10,) * 2, episodes=20, mean_return=1.0,
                      normalised_score=score, first10=0.0, last10=10.0)
            for e in env_ids
        )  # fmt: skip
        return EvalResult("ldm", "store", cfg, envs, summarise(envs))

    monkeypatch.setattr(E, "evaluate", fake_evaluate)
    return out, config, played, kill


def _cell_files(out):
    return sorted((out / "adapt" / "cells").glob("*.json"))


@pytest.mark.slow
def test_the_sweep_runs_every_cell_once_and_resumes_after_a_kill(pipeline, capsys):
    out, config, played, kill = pipeline
    # evaluate's calls: the eval stage (1), the held-out envs zero-shot (2), then K by K (the
    # bar's K=3 first, then 1 and 50), per env the learners (finetune, scratch, retrieval;
    # K=3's finetune also plays the pretraining envs: forgetting at the largest K, 50, which
    # has no data: at 3); K=50 plays nothing
    kill["at"] = 2 + 4 + 1  # in b/New-v0 K=3 finetune's evaluation, after its training
    with pytest.raises(Killed):
        run_pipeline(config, progress=False)
    finished = {p.name: p.read_text() for p in _cell_files(out)}
    assert sorted(finished) == [
        f"a__Other-v0__k3__{x}.json" for x in ("finetune", "retrieval", "scratch")
    ]
    status(str(out))
    assert "3 cells finished" in capsys.readouterr().out  # `ldm status` while it is unfinished
    # the killed cell's model trained (its checkpoints kept): rerunning resumes it
    assert (out / "adapt" / "runs" / "b__New-v0__k3__finetune" / "final").exists()
    kill["at"] = None
    n = len(played)
    run_pipeline(config, progress=False)
    cells = [Cell.from_dict(json.loads(p.read_text())) for p in _cell_files(out)]
    assert len(cells) == 2 * 3 * 3  # 2 held-out envs x 3 K x 3 learners
    assert {p.name: p.read_text() for p in _cell_files(out) if p.name in finished} == finished
    again = played[n:]  # the killed cell again (with forgetting), then each other cell once
    assert [(who, envs[0]) for who, envs, _ in again] == [
        ("ldm", UNSEEN_LIB), ("ldm", SEEN), ("ldm", UNSEEN_LIB), ("retrieval", UNSEEN_LIB),
        ("ldm", UNSEEN_ENV), ("ldm", UNSEEN_ENV), ("retrieval", UNSEEN_ENV),
        ("ldm", UNSEEN_LIB), ("ldm", UNSEEN_LIB), ("retrieval", UNSEEN_LIB),
    ]  # fmt: skip
    # cells play from the sweep's seed; forgetting from the evaluation stage's
    assert {seed for _, envs, seed in again if envs != (SEEN,)} == {7000}
    assert {seed for _, envs, seed in again if envs == (SEEN,)} == {1000}
    by = {(c.env_id, c.k, c.learner): c for c in cells}
    assert by[(UNSEEN_LIB, 50, "scratch")].score is None
    assert "hold 6 finished episodes" in by[(UNSEEN_LIB, 50, "scratch")].reason
    assert by[(UNSEEN_ENV, 1, "retrieval")].score == 30.0
    assert by[(UNSEEN_ENV, 3, "scratch")].score == 90.0
    forgot = [c for c in cells if c.forgetting is not None]
    assert sorted((c.env_id, c.k) for c in forgot) == [(UNSEEN_ENV, 3), (UNSEEN_LIB, 3)]
    assert forgot[0].forgetting == Forgetting(1, 1.0, 1.0) and forgot[0].learner == "finetune"
    assert not any((out / "adapt" / "runs").iterdir())  # models removed once scored
    # the report: JSON, curves, page; the verdict from the cells (ties at K=3: not beaten)
    report = EfficiencyReport.load(out / "adapt" / "adapt.json")
    assert report.verdict.beats_share == 0.0 and not report.verdict.passed
    assert "2 envs measured at K=3 (< 8)" in report.verdict.why
    assert (out / "adapt" / "curves.png").stat().st_size > 10_000
    page = (out / "adapt" / "report.html").read_text()
    assert "Score against K" in page and "Held-out envs: zero-shot and in context" in page
    heldout_page = (out / "eval-heldout" / "report.html").read_text()
    assert "Held-out envs: zero-shot and in context" in heldout_page
    headline = PipelineState(out).stage("adapt").summary["headline"]
    assert headline.startswith("18 cells; bar not met: 2 envs measured at K=3")
    assert "finetune K=3" in capsys.readouterr().out  # the sweep's table, printed
    status(str(out))
    assert "adapt   done" in capsys.readouterr().out
    n = len(played)
    run_pipeline(config, progress=False)  # finished: nothing plays again
    assert len(played) == n


@pytest.mark.slow
def test_changed_settings_are_not_mixed_with_measured_cells(pipeline, tmp_path):
    out, config, played, kill = pipeline
    kill["at"] = 2 + 2 + 1  # in the second cell: the first (K=3 finetune, forgetting) is measured
    with pytest.raises(Killed):
        run_pipeline(config, progress=False)
    (first,) = _cell_files(out)
    measured = first.read_text()
    config.write_text(TEXT.format(out=out, steps=3))
    with pytest.raises(
        ConfigError, match=r"other \[heldout.adapt\] settings \(steps changed\).*--from adapt"
    ):
        run_pipeline(config, progress=False)
    # a learner added (an ablation): the measured cell stays, the new learner's cells are
    # run, at the bar's K only
    kill["at"] = None
    config.write_text(
        TEXT.format(out=out, steps=2).replace(
            "bar_k = 3", 'bar_k = 3\nlearners = ["finetune", "finetune-backbone"]'
        )
    )
    run_pipeline(config, progress=False)
    assert first.read_text() == measured
    names = {p.name for p in _cell_files(out)}
    assert {n for n in names if "backbone" in n} == {
        "a__Other-v0__k3__finetune-backbone.json", "b__New-v0__k3__finetune-backbone.json"
    }  # fmt: skip
    assert len(names) == 2 * 3 + 2  # finetune at 3 Ks and the ablation at K=3, 2 envs


def test_the_heldout_config_holds_out_both_kinds_and_its_dry_run_names_the_sweep(capsys):
    from ldm.pipeline.cli import main

    cfg = PipelineConfig.load("configs/heldout.toml")
    refgen, train, _ = cfg.stages
    assert refgen.libraries == []  # the unseen libraries' listed envs only, not all of theirs
    trained = [e for e in refgen.envs if not cfg.held_out.covers(e)]
    held = [e for e in refgen.envs if cfg.held_out.covers(e)]
    assert len(trained) == 6 and len(held) == 9 and set(train.exclude) >= set(cfg.held_out.envs)
    assert len({e.split("/", 1)[0] for e in held}) >= 4
    assert main("configs/heldout.toml", dry_run=True) == 0
    printed = capsys.readouterr().out
    plan = json.loads(printed[: printed.rindex("}") + 1])
    assert [len(v) for v in plan["heldout"]["envs"].values()] == [4, 5]
    assert plan["heldout"]["adapt"]["cells"] == 9 * 4 * 3 + 9 * 2  # the ablations at K=5 only
    assert plan["heldout"]["adapt"]["forgetting_evaluations"] == 9
    assert (
        printed.strip()
        .splitlines()[-1]
        .endswith(
            "held out: 4 unseen envs and 5 of unseen libraries (9 libraries), scored zero-shot, then "
            "126 cells of score against K = [1, 5, 20, 100] (90 trained, 100 steps each) and 9 "
            "forgetting evaluations"
        )
    )


@pytest.mark.slow
def test_a_cell_whose_env_failed_is_not_recorded_and_plays_again(pipeline):
    out, config, played, kill = pipeline
    kill["fail_at"] = 2 + 1  # the first cell's evaluation: its env is lost
    with pytest.raises(
        EvalError, match=r"a/Other-v0: K=3 finetune: its env failed \(worker died\)"
    ):
        run_pipeline(config, progress=False)
    assert _cell_files(out) == []
    kill["fail_at"] = None
    kill["at"] = len(played) + 2 + 1  # rerun: the cell again (and forgetting), then stop
    with pytest.raises(Killed):
        run_pipeline(config, progress=False)
    (cell,) = [Cell.from_dict(json.loads(p.read_text())) for p in _cell_files(out)]
    assert (cell.env_id, cell.k, cell.learner, cell.score) == (UNSEEN_ENV, 3, "finetune", 90.0)
