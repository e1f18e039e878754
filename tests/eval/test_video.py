"""Clips: encoding and caps, recording along the protocol, `ldm play` seen and zero-shot."""

import numpy as np
import pytest
import torch

from ldm.errors import EvalError
from ldm.eval.video import EpisodeRecorder, clip_name, write_clip
from ldm.model import LDMPolicy, preset
from ldm.model.card import TrainingFacts


def _frames(n, h=50, w=75):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_clips_decode_with_their_frame_count_and_size(tmp_path, suffix):
    import imageio.v3 as iio

    path = tmp_path / f"c{suffix}"
    assert write_clip(_frames(12), path) == 12
    back = iio.imread(path, index=None)
    assert back.shape[0] == 12 and back.shape[1:3] == (50, 76)  # padded to even for H.264
    assert not list(tmp_path.glob(".*"))  # no temp file left


def test_size_cap_halves_the_frames(tmp_path):
    n = write_clip(_frames(64, 120, 160), tmp_path / "big.gif", max_bytes=200_000)
    assert n in (8, 16, 32) and (tmp_path / "big.gif").stat().st_size <= 200_000 or n == 8
    with pytest.raises(EvalError, match="video format 'avi'"):
        EpisodeRecorder(tmp_path, fmt="avi")
    assert clip_name("mujoco/Reacher-v5", ".mp4") == "mujoco__Reacher-v5.mp4"


class _Run:
    """What the recorder sees of an EnvRun: an env id and a vector env that renders."""

    def __init__(self, note=None):
        self.env_id = "lib/Env-v0"
        self.venv = self
        self.note = note
        self.renders = 0
        self.slots = [0]

    def render_frames(self, indices, max_side=0):
        self.renders += 1
        return [self.note or np.full((4, 6, 3), self.renders % 255, np.uint8)]


def test_recorder_thins_long_episodes_and_stops_after_its_episodes(tmp_path):
    rec = EpisodeRecorder(tmp_path, episodes=1, max_frames=10)
    run = _Run()
    rec.started(run)
    for _ in range(99):
        rec.stepped(run, done=False)
    rec.stepped(run, done=True)
    for _ in range(50):
        rec.stepped(run, done=False)  # after its episode: nothing more is rendered
    clip = rec.clips["lib/Env-v0"]
    assert len(clip.frames) < 10 and clip.every == 16
    # t=0..9 every step, then every 2nd (10..18), 4th (20..36), 8th (40..72), 16th (80, 96)
    assert run.renders == 1 + 9 + 5 + 5 + 5 + 2
    (res,) = rec.write().values()
    assert res.path.endswith("lib__Env-v0.mp4") and res.speed == 16 and res.episodes == 1
    bad = EpisodeRecorder(tmp_path)
    bad.started(_Run(note="render() raised DependencyNotInstalled: pygame"))
    (res,) = bad.write().values()
    assert res.path is None and "pygame" in res.note


def _checkpoint(tmp_path, envs):
    torch.manual_seed(0)
    model = LDMPolicy(preset("ldm-tiny", context=64)).eval()
    model.training_facts = TrainingFacts("ldm-tiny", tuple(envs), "s", "sha256:0", 1)
    return model.save_pretrained(tmp_path / "ck")


def test_play_a_seen_env_and_a_zero_shot_env_with_clips(tmp_path, capsys):
    import imageio.v3 as iio

    from ldm.cli import main

    ck = _checkpoint(tmp_path, ["classic-control/CartPole-v1"])
    video = tmp_path / "cart.mp4"
    assert (
        main(
            [
                "play",
                str(ck),
                "classic-control/CartPole-v1",
                "--episodes",
                "2",
                "--video",
                str(video),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "in the model's training data" in out and "zero-shot" not in out
    assert "episode 2: return" in out and f"clip: {video}" in out
    assert iio.imread(video, index=None).shape[0] >= 16  # two CartPole episodes, >= 8 steps each
    gif = tmp_path / "lake.gif"
    assert (
        main(["play", str(ck), "toy-text/FrozenLake-v1", "--episodes", "1", "--video", str(gif)])
        == 0
    )
    out = capsys.readouterr().out
    assert "zero-shot: not in the model's training data" in out
    assert iio.imread(gif, index=None).shape[-1] == 3
    assert (
        main(["play", str(ck), "toy-text/FrozenLake-v1", "--video", str(tmp_path / "x.avi")]) == 1
    )
    assert "write a .mp4 or .gif file" in capsys.readouterr().err


def test_an_env_that_cannot_be_made_rendering_is_still_played(tmp_path, monkeypatch):
    import ldm.envs
    from ldm.errors import EnvError
    from ldm.eval.play import play

    real = ldm.envs.make_vec

    def no_gl(env_id, num_envs, **kw):
        if "render_mode" in kw:
            raise EnvError(f"{env_id}: GL context: no display")
        return real(env_id, num_envs, **kw)

    monkeypatch.setattr(ldm.envs, "make_vec", no_gl)
    model = LDMPolicy(preset("ldm-tiny", context=32)).eval()
    out = play(model, "classic-control/CartPole-v1", 1, video=tmp_path / "x.mp4")
    assert len(out["returns"]) == 1 and out["returns"][0] > 0
    # no video; the episode drawn as a plot beside where it would have been, and why
    assert out["clip"].path == str(tmp_path / "x.png") and (tmp_path / "x.png").exists()
    assert "GL context: no display" in out["clip"].note
    assert not (tmp_path / "x.mp4").exists()


def test_eval_cli_takes_video_flags(capsys):
    from ldm.cli import main

    with pytest.raises(SystemExit) as e:  # tyro: help, then exit 0 (no flag name clash)
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--video" in out and "--references" in out


def test_an_env_without_frames_gets_a_plot_of_its_episode(tmp_path):
    import imageio.v3 as iio

    rec = EpisodeRecorder(tmp_path, episodes=1)
    run = _Run(note="render() raised NotImplementedError: ")
    rec.started(run)
    for t in range(1, 1201):  # 1,200 steps: thinned to at most 500 points
        obs = np.array([np.sin(t / 50), t / 1200, 0.0])
        outcome = (obs[None], np.array([1.0]), np.array([t == 1200]), np.array([False]))
        rec.stepped(run, done=t == 1200, outcome=outcome, actions=[np.array([t % 3 - 1.0])])
    late = (obs[None], np.array([5.0]), np.array([False]), np.array([False]))
    rec.stepped(run, done=False, outcome=late, actions=[np.zeros(1)])  # after it: ignored
    trace = rec.clips["lib/Env-v0"].trace
    assert trace.t == 1200 and trace.total == 1200.0 and len(trace.steps) < 500
    assert trace.every == 4 and trace.steps[-1] == 1200 and trace.returns[-1] == 1200.0
    (res,) = rec.write().values()
    assert res.path.endswith("lib__Env-v0.png") and "NotImplementedError" in res.note
    img = iio.imread(res.path)
    assert img.ndim == 3 and img.shape[0] > 300 and img.std() > 10  # a drawn figure
    assert run.renders == 1  # the first render said why; none was asked for after it
