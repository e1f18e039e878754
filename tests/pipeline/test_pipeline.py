"""A reduced pipeline end to end: references -> LDM -> evaluation, interrupted and resumed."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ldm.data import Store
from ldm.envs import make
from ldm.errors import ConfigError
from ldm.eval.results import EvalResult
from ldm.eval.scores import headline
from ldm.pipeline.config import PipelineConfig

CONFIG = """
name = "reduced"
out = "{out}"

[refgen]
envs = ["classic-control/CartPole-v1", "classic-control/Acrobot-v1", "mujoco/InvertedPendulum-v5"]
candidates = ["ppo-8env"]
top_n = 1
seeds = 2
rank_budget = 40000
train_budget = 40000
workers = 2

[train]
preset = "ldm-tiny"
model = {{ context = 64, obs_encoder = "smooth", prev_action_dropout = 0.3 }}
window = 64
steps = 400
batch_size = 32
micro_batch = 32
lr = 0.001
warmup_steps = 20
schedule = "cosine"
checkpoint_every = 50
val_every = 0
num_workers = 1

[eval]
rollouts = 1
episodes = 3
envs_at_once = 2
"""


def random_return(env_id: str, episodes: int = 10) -> float:
    # through the hub: the env's library lives in its own venv, not in the test's
    env = make(env_id)
    env.action_space.seed(0)
    total = 0.0
    for ep in range(episodes):
        env.reset(seed=ep)
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += r
            done = term or trunc
    env.close()
    return total / episodes


def test_bad_config_is_named(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(
        'name = "x"\nout = "y"\n[train]\npreset = "ldm-nope"\n[refgen]\nenvs = ["classic-control/CartPole-v1"]\n'
    )
    with pytest.raises(ConfigError, match="ldm-nope"):
        PipelineConfig.load(f)
    f.write_text('name = "x"\n')
    with pytest.raises(ConfigError, match="missing required key 'out'"):
        PipelineConfig.load(f)


@pytest.mark.parametrize(
    "table, message",
    [
        (
            "[train]\nbatch_size = 10\nmicro_batch = 4",
            "batch_size 10 is not a multiple of micro_batch 4",
        ),
        ("[train]\nwindow = 4096", "window 4096 is outside 1..the model's context"),
        ('[train]\nschedule = "linear"', "schedule 'linear' is not constant or cosine"),
        ('[eval]\nbackend = "dockr"', "backend 'dockr' is not one of"),
        ('[eval]\nvideo_format = "avi"', "video_format 'avi' is not mp4 or gif"),
        ('[refgen]\nrunner = "slurm"', "runner 'slurm' is not one of"),
        ('[refgen]\nbackend = "dockr"', "backend 'dockr' is not one of"),
    ],
)
def test_dry_run_rejects_what_the_run_would(table, message, tmp_path, capsys):
    """Settings that conflict or name no choice fail when the config is read, so `ldm run
    --dry-run` (which reads it the same way) rejects them before any stage starts."""
    from ldm.cli import main

    stage, line = table.split("\n", 1)
    tables = {"[refgen]": 'envs = ["classic-control/CartPole-v1"]', "[train]": "", "[eval]": ""}
    tables[stage] = "\n".join(filter(None, [tables[stage], line]))
    f = tmp_path / "bad.toml"
    head = f'name = "x"\nout = "{tmp_path / "out"}"\n'
    f.write_text(head + "".join(f"{k}\n{v}\n" for k, v in tables.items()))
    with pytest.raises(ConfigError, match=re.escape(message)):
        PipelineConfig.load(f)
    assert main(["run", str(f), "--dry-run"]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dry_run_of_the_paper_config_prints_a_plan(capsys):
    """The paper's run (ldm-v0.toml) as planned: every library it names, 3M transitions per
    job, the 308M model on 200k batches of 1024 windows, 2 x 10 episodes per env."""
    import tomllib

    from ldm.cli import main

    assert main(["run", "configs/ldm-v0.toml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    p = json.loads(out[: out.rindex("}") + 1])
    libraries = tomllib.loads(Path("configs/ldm-v0.toml").read_text())["refgen"]["libraries"]
    assert sorted(p["libraries"]) == sorted(libraries)
    for name, lib in p["libraries"].items():
        assert 1 <= len(lib["envs"]) <= 250, name
        assert lib["rank_jobs"] + lib["train_jobs"] == sum(e["jobs"] for e in lib["envs"].values())
        assert lib["transitions"] == 3_000_000 * (lib["rank_jobs"] + lib["train_jobs"])
        assert all(e["budgets"] == [3_000_000] for e in lib["envs"].values()), name
        assert lib["bytes"] > 0
    assert p["jobs"] == sum(lib["rank_jobs"] + lib["train_jobs"] for lib in p["libraries"].values())
    assert p["transitions"] == p["transitions_max"] == 3_000_000 * p["jobs"]
    assert p["estimated_storage_gb"] == round(
        sum(lib["bytes"] for lib in p["libraries"].values()) / 1e9, 2
    )
    assert (p["model"], p["train_steps"], p["train_windows"]) == ("ldm-308m", 200_000, 204_800_000)
    assert (p["eval_episodes_per_env"], p["runner"]) == (20, "ray")
    assert out.splitlines()[-1] == (
        f"plan: {p['jobs']} training jobs, {p['transitions']:,} transitions, "
        f"~{p['estimated_storage_gb']} GB of store, model ldm-308m for 200,000 steps"
    )


@pytest.mark.slow
def test_reduced_pipeline_beats_random_and_resumes_after_interrupt(tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "reduced.toml"
    cfg.write_text(CONFIG.format(out=out))
    cmd = [sys.executable, "-m", "ldm.cli", "run", str(cfg)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # interrupt (Ctrl-C) once training has started, then run the same command again
    p = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 900
    while time.time() < deadline and not list((out / "train" / "checkpoints").glob("step-*")):
        time.sleep(1)
    os.killpg(p.pid, signal.SIGINT)
    p.wait(timeout=120)
    state = json.loads((out / "pipeline.json").read_text())
    assert state["stages"]["refgen"]["done"] and not state["stages"]["train"]["done"]
    interrupted = state["stages"]["train"]["seconds"]  # the stopped attempt's time is kept
    assert interrupted > 0
    runs_before = set(Store(out / "store").runs())
    second = subprocess.run(cmd, env=env, check=True, timeout=1500, capture_output=True, text=True)
    assert "(resuming: " in second.stdout  # the resumed stage says how long it ran before
    state = json.loads((out / "pipeline.json").read_text())
    assert all(state["stages"][s]["done"] for s in ("refgen", "train", "eval"))
    assert state["stages"]["train"]["seconds"] > interrupted  # both attempts counted
    assert set(Store(out / "store").runs()) == runs_before  # nothing redone or duplicated
    results = json.loads((out / "eval" / "results.json").read_text())
    assert not (out / "eval" / "partial").exists()  # the kept groups go with results.json
    assert (out / "eval" / "report.html").exists() and (
        out / "eval" / "threshold_curve.png"
    ).exists()
    # see it act: a clip per env (LDM and reference), the references' learning curves, a card
    page = (out / "eval" / "report.html").read_text()
    assert "Reference learning curves" in page and "Training curves" in page
    for e in results["envs"]:
        assert (out / "eval" / e["clip"]).stat().st_size > 0, e
        assert (out / "eval" / e["reference_clip"]).stat().st_size > 0, e
        assert os.path.relpath(e["clip"], out / "eval") in page
    card = (out / "train" / "final" / "README.md").read_text()
    assert "Not evaluated yet" not in card
    assert headline(EvalResult.load(out / "eval").summary) in card
    for e in results["envs"]:
        rand = random_return(e["env_id"])
        assert e["mean_return"] > rand, (e["env_id"], e["mean_return"], rand)
