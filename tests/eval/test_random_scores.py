"""ldm/eval/random_scores.py and agents.RandomAgent: random scores measured by the protocol,
cached per env and version and reused."""

import json

import numpy as np
import pytest

import ldm.eval.random_scores as R
from ldm.eval.agents import RandomAgent
from ldm.spaces import SpaceSpec

CARTPOLE = "classic-control/CartPole-v1"


def test_random_actions_are_uniform_over_the_valid_actions():
    specs = [
        SpaceSpec("discrete", (), "int64", n=3, start=1),
        SpaceSpec("continuous", (2,), low=(-2.0, 0.0), high=(2.0, 1.0)),
        SpaceSpec("multi_discrete", (2,), "int64", nvec=(2, 5)),
    ]
    agent = RandomAgent(specs, seed=0)
    draws = [agent.act([None] * 3) for _ in range(3000)]
    disc = np.array([d[0] for d in draws])
    assert set(disc.tolist()) == {1, 2, 3}  # every category, none outside (start = 1)
    assert np.abs(np.bincount(disc)[1:] / 3000 - 1 / 3).max() < 0.04
    cont = np.stack([d[1] for d in draws])
    assert (cont[:, 0] >= -2).all() and (cont[:, 0] <= 2).all() and (cont[:, 1] >= 0).all()
    assert abs(cont[:, 0].mean()) < 0.1 and abs(cont[:, 1].mean() - 0.5) < 0.03
    md = np.stack([d[2] for d in draws])
    assert set(md[:, 1].tolist()) == {0, 1, 2, 3, 4} and set(md[:, 0].tolist()) == {0, 1}
    # a slot whose env is done gets no action
    assert agent.act([None] * 3, live=np.array([True, False, True]))[1] is None


def test_measured_once_per_env_version_then_read_from_the_cache(tmp_path, monkeypatch):
    first = R.random_scores([CARTPOLE], backend="inprocess", cache_dir=tmp_path)[CARTPOLE]
    assert first.error is None and first.episodes == 20
    # uniform random CartPole: short episodes (~22 steps on average), well under the expert
    assert 8 < first.mean < 60 and first.mean == pytest.approx(np.mean(sum(first.returns, ())))
    path = tmp_path / "classic-control" / "CartPole-v1.json"
    assert json.loads(path.read_text())["version"] == R.env_version(CARTPOLE)

    def no_measuring(*a, **k):
        raise AssertionError("measured again although the cache holds this version")

    monkeypatch.setattr(R, "_measure", no_measuring)
    assert R.random_scores([CARTPOLE], cache_dir=tmp_path)[CARTPOLE] == first
    # a new version of the env (another pin of its library, other make kwargs) is measured
    monkeypatch.setattr(R, "env_version", lambda env_id: "another")
    with pytest.raises(AssertionError, match="measured again"):
        R.random_scores([CARTPOLE], cache_dir=tmp_path)


def test_an_env_that_cannot_be_measured_is_an_error_for_it_alone(tmp_path):
    out = R.random_scores(["no-such-lib/X-v0"], backend="inprocess", cache_dir=tmp_path)
    bad = out["no-such-lib/X-v0"]
    assert bad.mean is None and "no library named 'no-such-lib'" in bad.error
    assert not list(tmp_path.rglob("*.json"))  # nothing cached for it


def test_the_command_prints_random_beside_expert_and_reuses_the_cache(
    capsys, tmp_path, monkeypatch
):
    from ldm.cli import main

    monkeypatch.setenv(R.CACHE_ENV, str(tmp_path))
    args = ["eval", "--random-scores", "--backend", "inprocess", "--envs", CARTPOLE]
    assert main(args) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith(CARTPOLE))
    assert line.split()[2:4] == ["20", "500.000"] and "optimum: 1 per step" in line
    measured = float(line.split()[1])
    monkeypatch.setattr(R, "_measure", lambda *a, **k: pytest.fail("measured again"))
    assert main(args) == 0
    assert f"{measured:.3f}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="name the envs with --envs"):
        main(["eval", "--random-scores"])
