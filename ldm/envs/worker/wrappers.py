"""Declared wrappers (library spec field `wrappers`), applied inside the env worker: the one
registry of their names (`WRAPPERS`) and `apply`.

They bring an env's observation space inside the paper's limits (obs_wrappers.py) and fix an
env's definition where a library falls short of what evaluation needs: rewards summed, a
team's actions joined (team_wrappers.py), seeds for the global generators and for unseeded
resets, FIRE pressed after a lost life (episode_wrappers.py). Spaces are handled as plain
*descriptions* (dicts, space_desc.py) so the same code serves gymnasium and legacy gym.

Seeds that a library takes only at construction or from its own `seed()`, a first reset
unlike the later ones, and observations outside their declared bounds have theirs in
reseed.py and bounds.py.

Imports: standard library, numpy and its sibling wrapper modules (runs in each library's own
venv, Python 3.6).
"""

import numpy as np

try:  # run as a script: siblings are on sys.path[0]
    import bounds
    import episode_wrappers
    import obs_wrappers
    import reseed
    import team_wrappers
except ImportError:  # imported as a package by the client / in-process backend
    from ldm.envs.worker import bounds, episode_wrappers, obs_wrappers, reseed, team_wrappers

# name -> (wrapper, applies-to predicate on the observation description). A library's
# declared wrappers apply to each of its envs where they fit, so one spec can cover
# libraries that mix vector, dict and image envs.
WRAPPERS = {
    "flatten_dict": (obs_wrappers.flatten_dict, lambda d: d["type"] in ("Dict", "Tuple")),
    "flatten_obs": (
        obs_wrappers.flatten_obs,
        lambda d: d["type"] == "Box" and len(d["shape"]) > 1 and not obs_wrappers.is_image(d),
    ),
    "resize_image": (
        obs_wrappers.resize_image,
        lambda d: obs_wrappers.is_image(d) and list(d["shape"][:2]) != list(obs_wrappers.IMAGE_HW),
    ),
    "image_first_channels": (
        obs_wrappers.image_first_channels,
        lambda d: (
            d["type"] == "Box"
            and np.dtype(d["dtype"]) == np.uint8
            and len(d["shape"]) == 3
            and d["shape"][2] > 4
        ),
    ),
    "grid_as_image": (
        obs_wrappers.grid_as_image,
        lambda d: d["type"] == "Dict" and "image" in d["spaces"],
    ),
    "discrete_to_box": (obs_wrappers.discrete_to_box, lambda d: d["type"] == "Discrete"),
    "seed_global_rngs": (episode_wrappers.SeedGlobalRNGs, lambda d: True),
    "sum_reward": (team_wrappers.SumReward, lambda d: True),
    # these three decide for themselves: on the action space, on the agent count and actions,
    # on the action meanings
    "joint_action": (team_wrappers.joint_action, lambda d: True),
    "team_actions": (team_wrappers.team_actions, lambda d: True),
    "fire_on_life_loss": (episode_wrappers.fire_on_life_loss, lambda d: True),
    "derive_reset_seeds": (episode_wrappers.DeriveResetSeeds, lambda d: True),
    "reseed_by_reconstruction": (reseed.ReseedByReconstruction, lambda d: True),  # first
    "seed_method_on_reset": (reseed.SeedMethodOnReset, lambda d: True),
    "settle_first_reset": (reseed.SettleFirstReset, lambda d: True),
    "seed_spaces": (reseed.SeedSpaces, lambda d: True),
    "clip_obs": (bounds.ClipObs, bounds.fits),
}


def apply(env, names):
    """Apply the declared wrappers, in order, where each fits the current observation space."""
    for name in names:
        wrap, fits = WRAPPERS[name]
        if fits(env.observation_desc):
            env = wrap(env)
    return env
