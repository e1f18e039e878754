"""One env the worker serves: `Instance` (the env in Gymnasium's API, behind its declared
wrappers, with its space descriptions and frames) and how an action from the wire is cast
for it (`action_for`).

Imports: standard library, numpy and its siblings legacy.py, reseed.py, space_desc.py and
wrappers.py (runs in each library's own venv, Python 3.6).
"""

import inspect

import numpy as np

try:  # run as a script: siblings are on sys.path[0]
    import legacy
    import reseed
    import space_desc
    import wrappers
except ImportError:  # imported as a package by the in-process backend
    from ldm.envs.worker import legacy, reseed, space_desc, wrappers


class Instance:
    """One env with its space descriptions (after the declared wrappers)."""

    def __init__(self, env, api, wrapper_names, remake=None):
        env_api = _adapt(env, api)
        if remake is not None:  # for reseed_by_reconstruction: later frames render the new env
            env_api.ldm_remake = reseed.adopting(remake, lambda raw: _adapt(self._raw(raw), api))
        self.raw = env
        self.env = wrappers.apply(env_api, wrapper_names)
        # the action as the outermost wrapper takes it (a team's joined action is not the one
        # agent's Discrete the env declares): its kind, and the space to cast to, if the env's
        joined = self.env.action_desc is not env_api.action_desc
        self.action_space = None if joined else env.action_space
        self.discrete = self.env.action_desc["type"] == "Discrete"
        self.legacy_render_mode = None  # set when the library takes the mode at render()

    def _raw(self, env):
        self.raw = env
        return env

    def frame(self, max_side=0):
        """(RGB uint8 frame, None) of the env as it is now, or (None, why not); frames larger
        than `max_side` are thinned by an integer stride here, so little crosses the wire."""
        try:
            out = self._render()
        except Exception as e:
            return None, "render() raised %s: %s" % (type(e).__name__, e)
        if isinstance(out, list):  # render_mode "rgb_array_list"
            out = out[-1] if out else None
        if out is None:
            return None, "render() returned nothing: make the env with render_mode='rgb_array'"
        arr = np.asarray(out)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
            return None, "render() returned %s %s, not an RGB image" % (arr.dtype, arr.shape)
        if max_side and max(arr.shape[:2]) > max_side:
            k = -(-max(arr.shape[:2]) // int(max_side))
            arr = arr[::k, ::k]
        return np.ascontiguousarray(arr[:, :, :3]), None

    def _render(self):
        # a library that takes the mode at render() (gym < 0.26, or an old env class behind
        # a newer gym's wrappers, whose render() takes no mode): ask the env itself
        if self.legacy_render_mode is not None:
            return _render_with_mode(self.raw, self.legacy_render_mode)
        out = self.raw.render()
        if out is None and accepts_kwarg(_inner(self.raw).render, "mode"):
            self.legacy_render_mode = "rgb_array"  # found once: later frames ask directly
            return _render_with_mode(self.raw, "rgb_array")
        return out

    def spaces(self):
        return {"observation": self.env.observation_desc, "action": self.env.action_desc}


def _adapt(env, api):
    """The env under the Gymnasium API, with its space descriptions (what wrappers take)."""
    env_api = legacy.LegacyGymEnv(env) if api == "gym" else env
    env_api.observation_desc = space_desc.describe_space(env.observation_space)
    env_api.action_desc = space_desc.describe_space(env.action_space)
    return env_api


def _render_with_mode(env, mode):
    if accepts_kwarg(env.render, "mode"):
        return env.render(mode=mode)
    inner = _inner(env)
    if accepts_kwarg(inner.render, "mode"):
        return inner.render(mode=mode)
    # a gymnasium-style env whose constructor does not take render_mode: it reads the attribute
    inner.render_mode = mode
    return inner.render()


def _inner(env):
    return getattr(env, "unwrapped", env)


def accepts_kwarg(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def action_for(inst, action):
    """`action` (from the wire or a shared view) as the env `inst` takes it."""
    # a copy: the env may keep the action, and a shared buffer is rewritten next step
    if inst.discrete:
        return int(np.asarray(action).reshape(-1)[0])
    space = inst.action_space
    if space is None:  # a wrapper joined the agents' actions: it splits them
        return np.array(action)
    # a list of per-agent spaces (ma-gym) has no dtype or shape: the wrappers take it as is
    dtype, shape = getattr(space, "dtype", None), getattr(space, "shape", None)
    return np.array(action, dtype=dtype).reshape(shape)
