"""The evaluation stage keeps the LDM's scores before the references play: a crash in the
references' evaluation (the suite's first full run lost its LDM scores that way) reruns only
that part. The references play in a helper process (`Helper`): it returns what the function
returns, raises what it raised, and does not outlive an interrupted stage."""

import os
import time
from dataclasses import replace

import pytest
import torch

import ldm.eval as E
import ldm.pipeline.references as R
from ldm.errors import EvalError
from ldm.eval import EvalConfig
from ldm.eval.results import EnvResult, EvalResult
from ldm.eval.scores import summarise
from ldm.model import LDMPolicy, preset
from ldm.pipeline.run import run_pipeline
from ldm.pipeline.state import PipelineState

ENV = "classic-control/CartPole-v1"


def _result(policy: str, score: float, cfg: EvalConfig | None = None) -> EvalResult:
    envs = (EnvResult(ENV, "ok", mean_return=score, normalised_score=score),)
    return EvalResult(policy, "store", cfg or EvalConfig(), envs, summarise(envs))


def _trained_run(tmp_path):
    """A pipeline directory whose references and training are done (a tiny untrained model as
    its final checkpoint): (out, config path, config text ending in its [eval] table)."""
    out = tmp_path / "run"
    text = (
        f'name = "t"\nout = "{out}"\n[refgen]\nenvs = ["{ENV}"]\n'
        '[train]\npreset = "ldm-tiny"\nmodel = { context = 32 }\nwindow = 32\n'
        "[eval]\nrollouts = 1\nepisodes = 1\nvideo = false\n"
    )
    state = PipelineState(out)
    state.mark_done("refgen", 1.0)
    state.mark_done("train", 1.0)
    torch.manual_seed(0)
    LDMPolicy(preset("ldm-tiny", context=32)).save_pretrained(out / "train" / "final")
    return out, tmp_path / "p.toml", text


def test_a_crash_in_the_references_evaluation_keeps_the_ldm_scores(tmp_path, monkeypatch):
    out, config, text = _trained_run(tmp_path)
    config.write_text(text)
    calls = []

    def fake_evaluate(policy, env_ids, store, cfg, **kw):
        calls.append("ldm" if policy is not None else "references")
        if policy is None and calls.count("references") == 1:
            raise RuntimeError("a reference policy crashed")
        return _result("ldm" if policy is not None else "references", 90.0)

    class InProcess(R.Helper):  # the fake evaluate is this process's: no helper process
        def __enter__(self):
            return self

        def done(self):
            return True

        def result(self):
            return self.fn(*self.args)

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(E, "evaluate", fake_evaluate)
    monkeypatch.setattr(R, "Helper", InProcess)
    with pytest.raises(RuntimeError, match="crashed"):
        run_pipeline(config, progress=False)
    kept = EvalResult.load(out / "eval" / "results.json")
    assert kept.policy == "ldm" and kept.env(ENV).normalised_score == 90.0
    assert not PipelineState(out).done("eval")

    summary = run_pipeline(config, progress=False)  # resumed: the LDM does not play again
    assert calls == ["ldm", "references", "references"]
    assert PipelineState(out).done("eval") and summary.scorable == 1
    final = EvalResult.load(out / "eval" / "results.json")
    assert final.env(ENV).reference_score == 90.0


def test_the_helper_runs_in_another_process_and_raises_what_it_raised():
    with R.Helper(os.getpid) as h:
        assert h.result() != os.getpid()
    with (
        R.Helper(os.listdir, "/no/such/dir") as h,
        pytest.raises(FileNotFoundError, match="no/such"),
    ):
        h.result()


def test_an_interrupted_block_stops_the_helper():
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt), R.Helper(time.sleep, 60) as h:
        time.sleep(1.0)  # the helper has started its work
        pids = list(h.pool._processes)
        assert pids
        raise KeyboardInterrupt
    assert time.perf_counter() - t0 < 20
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_unseen_stage_plays_the_ldm_again_from_its_own_seed(tmp_path, monkeypatch, capsys):
    """`[eval] unseen_seed`: a fourth stage evaluates the LDM once more from that base seed,
    the first evaluation's reference scores beside it; it is not redone when finished, is
    redone when the seed changes, and is marked off when the config asks for none."""
    out, config, text = _trained_run(tmp_path)
    text += "references = false\n"
    config.write_text(text)
    seeds = []

    def fake_evaluate(policy, env_ids, store, cfg, **kw):
        seeds.append(cfg.seed)
        return _result("ldm", 90.0 if cfg.seed == 1000 else 70.0, cfg)

    monkeypatch.setattr(E, "evaluate", fake_evaluate)
    run_pipeline(config, progress=False)  # no unseen_seed: the stage is marked off
    assert seeds == [1000]
    assert "  unseen      off" in capsys.readouterr().out
    assert PipelineState(out).stage("unseen").summary["headline"].startswith("off")
    assert not (out / "eval-unseen").exists()
    # the first evaluation's references, as the evaluation stage leaves them
    (out / "eval" / "references").mkdir()
    refs = replace(_result("references", 95.0), store=str(out / "store"))
    refs.save(out / "eval" / "references" / "results.json")

    config.write_text(text + "unseen_seed = 5000\n")
    run_pipeline(config, progress=False)
    assert seeds == [1000, 5000]  # only the new stage ran, from its own seed
    unseen = EvalResult.load(out / "eval-unseen" / "results.json")
    assert unseen.config.seed == 5000 and unseen.env(ENV).normalised_score == 70.0
    assert unseen.env(ENV).reference_score == 95.0  # the first evaluation's references
    assert (out / "eval-unseen" / "report.html").exists()
    record = PipelineState(out).stage("unseen")
    assert record.done and record.summary["seed"] == "5000"

    run_pipeline(config, progress=False)  # finished: nothing plays again
    assert seeds == [1000, 5000]
    config.write_text(text + "unseen_seed = 6000\n")
    run_pipeline(config, progress=False)  # another seed: the stage runs again
    assert seeds == [1000, 5000, 6000]


def test_an_unseen_seed_equal_to_the_seed_is_refused():
    with pytest.raises(EvalError, match="unseen_seed 1000 equals seed"):
        EvalConfig(unseen_seed=1000)
