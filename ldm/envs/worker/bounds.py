"""Observations held to their declared bounds: the declared wrapper `clip_obs`.

Some libraries declare a Box observation space tighter than what their envs emit (gym-electric-
motor normalises each state by its nominal limit and declares [-1, 1], but a state may pass its
limit before the env's constraint monitor ends the episode, and a reference may start outside
it). The paper's tokenizer and the catalog's checks take the declared bounds as the truth, so
such an env is either clipped to them here, declared in its spec (this wrapper, with the reason
in a comment beside it), or its space is widened with a named reason; never widened silently.

`clip_obs` clips each value of a Box observation to [low, high] of the space as the wrappers
before it describe it (declare it after `flatten_dict` / `flatten_obs`), keeping the dtype. A
clipped value loses how far past its limit the state went: the spec says where that is so.

Imports: numpy and its sibling wrapper_base.py (runs in each library's own venv, Python 3.6;
the worker imports it as a sibling of wrappers.py). Must not import wrappers.py (which
imports this file).
"""

import numpy as np

try:  # run as a script: siblings are on sys.path[0]
    import wrapper_base
except ImportError:  # imported as a package by the client / in-process backend
    from ldm.envs.worker import wrapper_base


class ClipObs(wrapper_base.Transformed):
    """Box observations clipped to the declared [low, high] (see the module): a `Transformed`
    env whose function is `clip` and whose description is the env's own, unchanged."""

    def __init__(self, env):
        desc = env.observation_desc
        self.dtype = np.dtype(desc["dtype"])
        self.low = np.broadcast_to(desc["low"], desc["shape"]).astype(self.dtype)
        self.high = np.broadcast_to(desc["high"], desc["shape"]).astype(self.dtype)
        super().__init__(env, self.clip, desc)

    def clip(self, obs):
        return np.clip(np.asarray(obs, dtype=self.dtype), self.low, self.high)


def fits(desc):
    """clip_obs applies to Box observations."""
    return desc["type"] == "Box"
