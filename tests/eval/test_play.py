"""`ldm play` through the CLI: the README's command plays; an id it cannot make is a clear
error naming the closest catalogued ids (not a TypeError), before or after the model loads."""

from __future__ import annotations

import pytest

from ldm.cli import main
from ldm.model import LDMPolicy, preset


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("play") / "ck"
    return str(LDMPolicy(preset("ldm-tiny", context=32)).save_pretrained(d))


def test_play_acts_in_the_readmes_env(checkpoint, capsys):
    assert main(["play", checkpoint, "toy-text/Taxi-v4", "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "episode 1: return" in out and "mean return over 1 episodes" in out


@pytest.mark.parametrize(
    ("env_id", "says"),
    [
        # deprecated by Gymnasium 1.4: the id that replaced it
        ("toy-text/Taxi-v3", ["unknown env id", "toy-text/Taxi-v4"]),
        # the catalog's patterns take it, the library cannot make it: its reason, one line
        ("toy-text/CliffWalking-v0", ["DeprecatedEnv", "toy-text/CliffWalking-v1"]),
        # unqualified: the libraries that register it
        ("CartPole-v1", ["classic-control/CartPole-v1", "gym-legacy-classic/CartPole-v1"]),
        # a typo
        ("classic-control/CartPol-v1", ["unknown env id", "classic-control/CartPole-v1"]),
    ],
)
def test_an_id_it_cannot_make_is_a_clear_error(checkpoint, capsys, env_id, says):
    assert main(["play", checkpoint, env_id, "--episodes", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ldm play: error: cannot play {env_id!r}")
    assert all(s in err for s in says), err
    assert "Traceback" not in err and "TypeError" not in err
