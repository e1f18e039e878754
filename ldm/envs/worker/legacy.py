"""Worker side: every generation of the `gym` API -> Gymnasium's 5-tuple API.

Runs inside each library's own venv, on the oldest interpreter a catalogued library needs
(Python 3.6: no f-string `=`, walrus, dataclasses, `list[int]` annotations, shared_memory),
with numpy 1.x and gym 0.9 to 0.26. What it converts:

- pre-0.10 envs that define only `_step` / `_reset` / `_seed` (later gyms no longer call them);
- `reset()` that returns only the observation, and no `seed` argument (then `seed(n)` is
  called; envs seeded only at construction, like procgen's, ignore it with a warning);
- a 4-tuple `step` whose `done` is split into terminated / truncated: `TimeLimit.truncated`
  in the info (gym >= 0.15), else the time-limit wrapper's elapsed steps (older gyms);
- `done` as an int (gym-inventory returns 0).

Imports: standard library and its sibling space_desc.py (the worker imports this file as a
sibling script).
"""

import inspect
import warnings

try:  # run as a script: siblings are on sys.path[0]
    import space_desc
except ImportError:  # imported as a package by the in-process backend
    from ldm.envs.worker import space_desc

_UNDERSCORE = ("step", "reset", "seed", "render", "close")


def _defined_by_gym(cls, name):
    """Whether gym's/gymnasium's own core class (not the library) defines `cls.name`."""
    for klass in cls.__mro__:
        if name in vars(klass):
            module = klass.__module__ or ""
            return module.split(".")[0] in ("gym", "gymnasium") and module.endswith("core")
    return False


def upgrade_underscore_methods(env):
    """Let the base env answer `step()` etc. where it only defines the pre-0.10 `_step()`."""
    base = getattr(env, "unwrapped", env)
    cls = type(base)
    for name in _UNDERSCORE:
        if not hasattr(cls, "_" + name) or _defined_by_gym(cls, "_" + name):
            continue
        if not hasattr(cls, name) or _defined_by_gym(cls, name):
            setattr(base, name, getattr(base, "_" + name))
    return env


def _accepts(fn, name):
    """ "yes" (a named parameter), "maybe" (only **kwargs) or "" (no)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return ""
    if name in params:
        return "yes"
    return "maybe" if any(p.kind == p.VAR_KEYWORD for p in params.values()) else ""


def _takes_argument(fn):
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    return any(p.kind != p.VAR_KEYWORD for p in params)


def time_limit_of(env):
    """The time-limit wrapper in a wrapper chain (it counts `_elapsed_steps`), or None."""
    while env is not None:
        if hasattr(env, "_max_episode_steps") and hasattr(env, "_elapsed_steps"):
            return env
        env = getattr(env, "env", None)
    return None


def _done(flag):
    """`done` as a bool; a done per agent (ma-gym's list) is done when every agent is (a
    non-empty list is truthy: `bool` would end every episode after its first step)."""
    if isinstance(flag, (list, tuple, dict)):
        parts = list(flag.values()) if isinstance(flag, dict) else list(flag)
        return bool(parts) and all(bool(p) for p in parts)
    return bool(flag)


class LegacyGymEnv:
    """Adapts a gym env of any generation (0.9 to 0.26) to the 5-tuple API."""

    def __init__(self, env):
        self.env = upgrade_underscore_methods(env)
        base = getattr(env, "unwrapped", env)
        # wrappers forward **kwargs, so ask the env itself what its reset accepts
        # any gym generation, subclasses as their base
        self.obs_is_tuple = space_desc.space_kind(env.observation_space) == "Tuple"
        self.time_limit = time_limit_of(env)
        # some envs are seeded only at construction (procgen's `seed()` takes no argument)
        seed_fn = getattr(self.env, "seed", None)
        self.seedable = seed_fn is not None and _takes_argument(seed_fn)
        self.warned_seed = False
        # a reset(**kwargs) of the gym 0.21 era swallows a seed: where seed(n) exists, use it
        takes_seed = _accepts(base.reset, "seed")
        self.reset_takes_seed = takes_seed == "yes" or (takes_seed and not self.seedable)
        self.reset_takes_options = bool(_accepts(base.reset, "options"))

    def reset(self, seed=None, options=None):
        kwargs = {}
        if self.reset_takes_seed:
            if seed is not None:
                kwargs["seed"] = seed
        elif seed is not None and self.seedable:
            self.env.seed(seed)
        elif seed is not None and not self.warned_seed:
            self.warned_seed = True
            warnings.warn("this env takes no seed after construction: seed ignored", stacklevel=2)
        if options is not None and self.reset_takes_options:
            kwargs["options"] = options
        result = self.env.reset(**kwargs)
        # gym 0.26 returns (obs, info); older gyms (and procgen under 0.26) only obs
        if (
            not self.obs_is_tuple
            and isinstance(result, tuple)
            and len(result) == 2
            and isinstance(result[1], dict)
        ):
            return result
        return result, {}

    def step(self, action):
        result = self.env.step(action)
        if len(result) == 5:
            obs, reward, terminated, truncated, info = result
            return obs, reward, _done(terminated), _done(truncated), info
        obs, reward, done, info = result
        done = _done(done)
        if "TimeLimit.truncated" in info:
            truncated = bool(info["TimeLimit.truncated"])
        else:
            limit = self.time_limit
            truncated = bool(
                done
                and limit is not None
                and limit._max_episode_steps is not None
                and limit._elapsed_steps >= limit._max_episode_steps
            )
        return obs, reward, done and not truncated, truncated, info

    def close(self):
        try:
            self.env.close()
        except (AttributeError, NotImplementedError) as e:
            # gym 0.9's close calls `_render(close=True)`, which envs without rendering lack
            warnings.warn("legacy env close failed (ignored): %s" % e, stacklevel=2)
