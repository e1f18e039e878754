"""`ldm play CHECKPOINT ENV_ID`: watch a trained LDM act in any catalogued env.

It runs the evaluation protocol's machinery for one rollout of N episodes (the context kept
across them, as in evaluation), prints each episode's return, and with `--video` saves a clip
of the episodes. An env the model was not trained on (by its model card's facts) is played
zero-shot, and the command says so; an id it cannot make is an error naming the closest
catalogued ids. Imports: ldm.eval's protocol and video, ldm.model, ldm.envs' registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tyro

from ldm.errors import EvalError, LDMError
from ldm.tokens import ActionDecoding


def main(
    checkpoint: tyro.conf.Positional[str],
    env_id: tyro.conf.Positional[str],
    episodes: int = 3,
    video: str | None = None,
    seed: int = 0,
    deterministic: bool = True,
    backend: str = "process",
    decoding: ActionDecoding = "median",
) -> int:
    """Run a trained LDM in an env, print its returns, and optionally save a clip.

    Args:
        checkpoint: A checkpoint folder (`runs/.../train/final`) or a Hugging Face Hub id.
        env_id: Any catalogued env id (`ldm envs list`), seen in training or not.
        episodes: Episodes to play (the context is kept across them).
        video: Write a clip of the episodes here (.mp4 or .gif).
        seed: Seed of the env's first reset.
        deterministic: Argmax actions (else sampled).
        backend: Env backend (process, inprocess, ray, docker).
        decoding: Deterministic continuous actions at the median of the predicted bins
            (median) or at the most likely bin (argmax).
    """
    from ldm.envs.library.registry import resolve_env_id
    from ldm.errors import EnvError
    from ldm.model import LDMPolicy

    try:  # a typo or an unqualified id fails before the model loads
        resolve_env_id(env_id)
    except EnvError as e:
        raise EvalError(f"cannot play {env_id!r}: {e}") from None
    policy = LDMPolicy.from_pretrained(checkpoint)
    print(seen_note(policy, env_id))
    result = play(policy, env_id, episodes, video, seed, deterministic, backend, decoding)
    for i, r in enumerate(result["returns"]):
        print(f"episode {i + 1}: return {r:.4g}")
    print(f"mean return over {len(result['returns'])} episodes: {np.mean(result['returns']):.4g}")
    if video:
        clip = result["clip"]
        if clip.path and clip.path.endswith(".png"):
            print(f"no clip ({clip.note}); the episode as a plot: {clip.path}")
        else:
            print(f"clip: {clip.path}" if clip.path else f"no clip: {clip.note}")
    return 0


def seen_note(policy: Any, env_id: str) -> str:
    """Whether the model was trained on `env_id`, by its model card's facts."""
    facts = policy.training_facts
    if facts is None:
        return f"{env_id}: the checkpoint records no training data; cannot tell if it saw this env"
    if env_id in facts.envs:
        return f"{env_id}: in the model's training data ({len(facts.envs)} envs)"
    libs = ", ".join(facts.libraries)
    return (
        f"{env_id}: zero-shot: not in the model's training data ({len(facts.envs)} envs "
        f"from {libs}); it acts from what it learnt elsewhere"
    )


def play(
    policy: Any,
    env_id: str,
    episodes: int = 3,
    video: str | Path | None = None,
    seed: int = 0,
    deterministic: bool = True,
    backend: str = "process",
    decoding: ActionDecoding = "median",
) -> dict[str, Any]:
    """Play `episodes` episodes of one env; returns {"returns": [...], "clip": ClipResult}."""
    from ldm.eval.agents import SessionAgent
    from ldm.eval.config import EvalConfig
    from ldm.eval.evaluate import env_run
    from ldm.eval.protocol import run_protocol
    from ldm.eval.video import EpisodeRecorder

    cfg = EvalConfig(
        rollouts=1,
        episodes=episodes,
        deterministic=deterministic,
        seed=seed,
        backend=backend,
        decoding=decoding,
    )
    try:
        run = env_run(env_id, cfg)
    except LDMError as e:
        raise EvalError(cannot_make(env_id, str(e))) from None
    runs = [run]
    run.seeds, run.slots = [seed], [0]
    recorder = None
    if video:
        video = Path(video)
        if video.suffix not in (".mp4", ".gif"):
            raise EvalError(f"--video {video}: write a .mp4 or .gif file")
        recorder = EpisodeRecorder(video.parent, episodes=episodes, fmt=video.suffix[1:])
        run.render_mode = "rgb_array"
    agent = SessionAgent(policy, [run.obs_spec], [run.act_spec], cfg)
    run_protocol(runs, agent, cfg, progress=False, recorder=recorder)
    if run.error:
        raise EvalError(f"{env_id}: {run.error}")
    clip = recorder.write({env_id: video}).get(env_id) if recorder and video else None
    return {"returns": run.returns[0], "clip": clip}


def cannot_make(env_id: str, error: str) -> str:
    """Why an env could not be played, in one paragraph: the library's own reason (its first
    line: a worker's traceback stays in the worker's log) and the closest catalogued ids."""
    from ldm.envs.library.registry import close_env_ids

    reason = error.splitlines()[0]
    if reason.startswith(f"{env_id}: "):
        reason = reason[len(env_id) + 2 :]
    close = close_env_ids(env_id)
    hint = f" Catalogued ids close to it: {', '.join(close)}." if close else ""
    return f"cannot play {env_id!r}: {reason}.{hint} Every id: `ldm envs list`."
