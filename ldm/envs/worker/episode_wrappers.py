"""Declared wrappers that fix how an env's episodes start and end: seeds for the global
generators and for unseeded resets, FIRE pressed after a lost life, and `StepLimit`, the
per-episode step limit (a make kwarg, `STEP_LIMIT_KWARG`, or `DEFAULT_STEP_LIMIT_KWARG`: a
limit only for an env that has none of its own, `has_time_limit`).

Imports: standard library, numpy and its sibling wrapper_base.py (runs in each library's own
venv, Python 3.6).
"""

import numpy as np

try:  # run as a script: siblings are on sys.path[0]
    import wrapper_base
except ImportError:  # imported as a package by the client / in-process backend
    from ldm.envs.worker import wrapper_base


class SeedGlobalRNGs(wrapper_base.Wrapper):
    """Seeds Python's `random` and numpy's global generator on every seeded reset.

    For libraries that draw from the global generators instead of the env's own `np_random`
    (gym-trading-env draws its start index and position from `np.random`), so that
    `reset(seed=...)` reproduces an episode as Gymnasium promises.
    """

    def reset(self, seed=None, options=None):
        if seed is not None:
            import random

            random.seed(seed)
            np.random.seed(seed % 2**32)
        return self.env.reset(seed=seed, options=options)


class DeriveResetSeeds(wrapper_base.Wrapper):
    """An unseeded reset gets a seed drawn from a generator seeded by the last seeded reset.

    For libraries whose `reset` draws a fresh `np.random.default_rng(seed)` (sepsisim and its
    siblings): with `seed=None` that takes the OS's entropy, so the episodes after a rollout's
    first one were not determined by its seed (sepsisim's reference scored 94.6 and 79.9 with
    the same policy and seeds). Unseeded resets before any seeded one pass through.
    """

    def __init__(self, env):
        super().__init__(env)
        self.rng = None

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.RandomState(int(seed) % 2**32)
        elif self.rng is not None:
            seed = int(self.rng.randint(2**31 - 1))
        return self.env.reset(seed=seed, options=options)


def _action_meanings(env):
    """The env's `get_action_meanings()` (Atari), looked up through wrapper layers, or []."""
    seen = 0
    while env is not None and seen < 32:
        fn = getattr(env, "get_action_meanings", None)
        if callable(fn):
            try:
                return list(fn())
            except Exception:
                return []
        env = getattr(env, "unwrapped", None) if getattr(env, "env", None) is None else env.env
        seen += 1
    return []


class FireOnLifeLoss(wrapper_base.Wrapper):
    """Presses FIRE once after each reset and after each lost life (an Atari game's ball or
    ship does not come back until FIRE is pressed).

    A deterministic policy that never presses FIRE in that state plays until the episode's
    step limit with the same frame on screen; the stochastic policy it was trained as presses
    it by chance. The extra step's reward is added to the step that lost the life, and an
    episode that ends on it ends there. Lives are read from `info["lives"]` (ale-py).
    """

    def __init__(self, env, fire):
        super().__init__(env)
        self.fire = fire
        self.lives = None

    def reset(self, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        fired, _, terminated, truncated, fired_info = self.env.step(self.fire)
        if not (terminated or truncated):
            obs, info = fired, dict(info or {})
            info.update(fired_info or {})
        else:  # the FIRE ended it (never in a real game): start over without it
            obs, info = self.env.reset(options=options)
        self.lives = (info or {}).get("lives")
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = (info or {}).get("lives")
        lost = lives is not None and self.lives is not None and lives < self.lives
        self.lives = lives
        if lost and not (terminated or truncated):
            obs, extra, terminated, truncated, info = self.env.step(self.fire)
            reward = reward + extra
            self.lives = (info or {}).get("lives", lives)
        return obs, reward, terminated, truncated, info


def fire_on_life_loss(env):
    meanings = _action_meanings(env)
    return FireOnLifeLoss(env, meanings.index("FIRE")) if "FIRE" in meanings else env


#: make kwarg that truncates every episode after this many steps (see StepLimit)
STEP_LIMIT_KWARG = "ldm_step_limit"

#: make kwarg: the same, but only for an env with no time limit of its own (no time-limit
#: wrapper from its registration, no declared `ldm_step_limit`): a rule for a breadth of envs
#: whose episodes may never end (bandits, trial streams), that leaves the others as they are
DEFAULT_STEP_LIMIT_KWARG = "ldm_default_step_limit"


def has_time_limit(env):
    """Whether a wrapper chain holds a time limit: Gymnasium's or gym's `TimeLimit` (any
    wrapper counting `_elapsed_steps` against a set `_max_episode_steps`) or a `StepLimit`."""
    while env is not None:
        if isinstance(env, StepLimit):
            return True
        if getattr(env, "_max_episode_steps", None) is not None and hasattr(env, "_elapsed_steps"):
            return True
        env = getattr(env, "env", None)
    return False


class StepLimit(wrapper_base.Wrapper):
    """Truncates an episode after `limit` steps, marking it `info["ldm_cut"]`.

    A declared time limit for envs that never end on their own (catalog `make_kwargs`), and
    the evaluation protocol's per-episode limit. Works the same for every API and Python.
    """

    def __init__(self, env, limit):
        super().__init__(env)
        self.limit = int(limit)
        self.steps = 0

    def reset(self, seed=None, options=None):
        self.steps = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.steps >= self.limit and not (terminated or truncated):
            info = dict(info or {})
            info["ldm_cut"] = True
            truncated = True
        return obs, reward, terminated, truncated, info
