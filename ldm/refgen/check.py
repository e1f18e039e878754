"""The deterministic check: a trained policy plays its own deterministic actions.

Relabelling writes the final policy's deterministic actions into the store, the LDM learns
those, and the protocol scores the reference by them; the training returns come from the
stochastic policy that explored. The two can differ a lot: an argmax Atari policy that never
presses FIRE, a MiniGrid policy that loops before the door. `play_deterministic` plays a
few episodes of the deterministic policy on fresh envs (seeds the training did not use),
with a per-episode step limit so a policy that stalls cannot play forever; curation then
fails a run whose check scores below a floor of its own training improvement
(ldm/refgen/curate.py), so the fallbacks replace it.

Owns: `play_deterministic` (the check's score is curation's: ldm/refgen/curate.py). Imports
ldm.envs (its SB3 vector env inside the function); must not import ldm.model, ldm.train or
ldm.eval.
"""

from __future__ import annotations

from typing import Any

from ldm.envs import Backend

#: x the longest training episode: the check's per-episode step limit (the protocol's default)
CHECK_LIMIT_FACTOR = 3.0
#: added to a job's seed for the check's env (the suites' evaluation seeds stay far below)
CHECK_SEED_OFFSET = 900_000


def play_deterministic(
    model: Any,
    env_id: str,
    episodes: int,
    seed: int,
    longest_episode: int,
    backend: Backend = "process",
    step_limit: int | None = None,
) -> list[float]:
    """Returns of `episodes` episodes of `model.predict(obs, deterministic=True)`, one on
    each of `episodes` fresh copies of the env stepped together (one worker, one batched
    predict a step: played one after another on one env, the check took ~30 s of a wide run's
    ~160 s jobs), env i seeded `seed + CHECK_SEED_OFFSET + i`. Each env's first episode
    counts, whatever its length (taking the first `episodes` to finish would favour the short
    ones). An episode longer than CHECK_LIMIT_FACTOR x `longest_episode` steps is cut and
    counted with its return so far (as the protocol counts it); `step_limit`: the default
    limit the run's episodes were cut at (its training's rule, so its check's too)."""
    import numpy as np

    from ldm.envs import episode_step_limit, sb3_vec_env
    from ldm.envs.worker.episode_wrappers import STEP_LIMIT_KWARG

    limit = episode_step_limit(env_id, longest_episode, CHECK_LIMIT_FACTOR)
    limit = min(limit, step_limit) if limit and step_limit else limit or step_limit
    kwargs = {STEP_LIMIT_KWARG: limit} if limit else {}
    venv = sb3_vec_env(env_id, episodes, backend=backend, workers=1, **kwargs)
    try:
        venv.seed(seed + CHECK_SEED_OFFSET)
        obs = venv.reset()
        totals = np.zeros(episodes)
        returns: list[float | None] = [None] * episodes
        while any(r is None for r in returns):
            actions, _ = model.predict(obs, deterministic=True)
            obs, rewards, dones, _ = venv.step(actions)
            totals += np.asarray(rewards, dtype=np.float64)
            for i in np.flatnonzero(dones):
                if returns[i] is None:
                    returns[i] = float(totals[i])
            totals[dones] = 0.0
        return [float(r) for r in returns if r is not None]
    finally:
        venv.close()
