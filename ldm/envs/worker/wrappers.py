"""Declared wrappers (library spec field `wrappers`), applied inside the env worker.

They bring an env's observation space inside the paper's limits: flatten a dict, flatten a
multi-dimensional vector, resize images to 64x64, take a grid as an image, one-hot a
discrete observation. A few fix an env's definition where a library falls short of what
evaluation needs: rewards summed to a scalar, a team's actions joined, seeds for the global
generators and for unseeded resets, FIRE pressed after a lost life. Spaces are handled as
plain *descriptions* (dicts, see `describe_space`) so the same code serves gymnasium and
legacy gym.

Imports: standard library, numpy and its siblings reseed.py and bounds.py (runs in each
library's own venv).
"""

import numpy as np

try:  # run as a script: siblings are on sys.path[0]
    import bounds
    import reseed
except ImportError:  # imported as ldm.envs.worker.wrappers
    from ldm.envs.worker import bounds, reseed

IMAGE_HW = (64, 64)


#: The standard space classes ldm describes; a library's own space class is described as the
#: first of these in its method resolution order (a `class Grid(Box)` is a Box).
SPACE_KINDS = ("Box", "Discrete", "MultiDiscrete", "MultiBinary", "Dict", "Tuple")


def space_kind(space):
    """The standard gym/gymnasium space class `space` is an instance of, by name, or None.

    Walks the class's MRO for a class of a `gym.spaces` / `gymnasium.spaces` module, so a
    subclass (a library's `class Grid(Box)`) is handled as its base class, in any gym
    generation, without importing gym or gymnasium here.
    """
    for cls in type(space).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if cls.__name__ in SPACE_KINDS and module.split(".")[0] in ("gym", "gymnasium"):
            return cls.__name__
    return None


def _describe_box(space):
    return {
        "type": "Box",
        "low": np.asarray(space.low),
        "high": np.asarray(space.high),
        "dtype": np.dtype(space.dtype).str,
        "shape": list(space.shape),
    }


def _describe_multi_binary(space):
    n = space.n
    return {"type": "MultiBinary", "n": n if isinstance(n, int) else list(n)}


#: space kind -> its wire description (a plain dict); one small function per kind
_DESCRIBE = {
    "Box": _describe_box,
    "Discrete": lambda s: {"type": "Discrete", "n": int(s.n), "start": int(getattr(s, "start", 0))},
    "MultiDiscrete": lambda s: {"type": "MultiDiscrete", "nvec": np.asarray(s.nvec)},
    "MultiBinary": _describe_multi_binary,
    "Dict": lambda s: {
        "type": "Dict",
        "spaces": {k: describe_space(v) for k, v in s.spaces.items()},
    },
    "Tuple": lambda s: {"type": "Tuple", "spaces": [describe_space(v) for v in s.spaces]},
}


def describe_space(space):
    """A gym/gymnasium space -> a plain dict (the wire format of spaces). A list or tuple of
    spaces (one per agent, e.g. ma-gym's `MultiAgentActionSpace`) is described as a Tuple."""
    if isinstance(space, (list, tuple)) and space and all(space_kind(s) for s in space):
        return {"type": "Tuple", "spaces": [describe_space(s) for s in space]}
    describe = _DESCRIBE.get(space_kind(space))
    if describe is None:  # e.g. MiniGrid's text MissionSpace: fine inside a Dict a wrapper drops
        return {"type": "Unsupported", "name": type(space).__name__}
    return describe(space)


class Wrapper:
    """Passes reset, step and close through to `env` and keeps its space descriptions; each
    declared wrapper overrides only what it changes."""

    def __init__(self, env):
        self.env = env
        self.observation_desc = env.observation_desc
        self.action_desc = env.action_desc

    def reset(self, seed=None, options=None):
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        return self.env.step(action)

    def close(self):
        self.env.close()


class Transformed(Wrapper):
    """An env whose observations pass through `fn` and whose obs space description is `desc`."""

    def __init__(self, env, fn, desc):
        super().__init__(env)
        self.fn = fn
        self.observation_desc = desc

    def reset(self, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self.fn(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.fn(obs), reward, terminated, truncated, info


def _flat_box(desc):
    low = np.broadcast_to(desc["low"], desc["shape"]).ravel().astype(np.float32)
    high = np.broadcast_to(desc["high"], desc["shape"]).ravel().astype(np.float32)
    return [(lambda x: np.asarray(x, np.float32).ravel(), low, high)]


def _flat_discrete(desc):
    n, start = desc["n"], desc["start"]

    def onehot(x, n=n, start=start):
        v = np.zeros(n, np.float32)
        v[int(x) - start] = 1.0
        return v

    return [(onehot, np.zeros(n, np.float32), np.ones(n, np.float32))]


def _flat_counts(hi):
    return [(lambda x: np.asarray(x, np.float32).ravel(), np.zeros_like(hi), hi)]


def _flat_dict(desc):
    parts = []
    for key in sorted(desc["spaces"]):
        for fn, lo, hi in _flat_parts(desc["spaces"][key]):
            parts.append((lambda x, fn=fn, key=key: fn(x[key]), lo, hi))
    return parts


def _flat_tuple(desc):
    parts = []
    for i, sub in enumerate(desc["spaces"]):
        for fn, lo, hi in _flat_parts(sub):
            parts.append((lambda x, fn=fn, i=i: fn(x[i]), lo, hi))
    return parts


#: description type -> its parts when flattened: [(flatten fn, low, high)]
_FLAT = {
    "Box": _flat_box,
    "Discrete": _flat_discrete,
    "MultiDiscrete": lambda d: _flat_counts(np.asarray(d["nvec"], np.float32).ravel() - 1),
    "MultiBinary": lambda d: _flat_counts(np.ones(int(np.prod(d["n"])), np.float32)),
    "Dict": _flat_dict,
    "Tuple": _flat_tuple,
}


def _flat_parts(desc):
    """Per sub-space of a Dict/Tuple: (flatten fn, low, high)."""
    flat = _FLAT.get(desc["type"])
    if flat is None:
        raise TypeError("cannot flatten a %s space" % desc["type"])
    return flat(desc)


def flatten_dict(env):
    """Dict/Tuple observations -> one float32 vector (keys in sorted order; discrete one-hot)."""
    parts = _flat_parts(env.observation_desc)
    low = np.concatenate([p[1] for p in parts])
    high = np.concatenate([p[2] for p in parts])
    desc = {"type": "Box", "low": low, "high": high, "dtype": "<f4", "shape": [len(low)]}
    return Transformed(env, lambda obs: np.concatenate([fn(obs) for fn, _, _ in parts]), desc)


def flatten_obs(env):
    """A multi-dimensional Box observation -> a flat vector."""
    d = env.observation_desc
    if d["type"] != "Box":
        raise TypeError("flatten_obs needs a Box observation space, got %s" % d["type"])
    low = np.broadcast_to(d["low"], d["shape"]).ravel()
    high = np.broadcast_to(d["high"], d["shape"]).ravel()
    desc = {"type": "Box", "low": low, "high": high, "dtype": d["dtype"], "shape": [low.size]}
    return Transformed(env, lambda obs: np.asarray(obs).ravel(), desc)


_PIXELS = {}  # (h, w) -> flat indices of the 64x64 sampled pixels (computed once per size)


def _resize(img):
    """Nearest-neighbour 64x64 sampling: pixel (r * h // 64, c * w // 64) for output (r, c).
    One gather by precomputed flat indices (a third of the time of two fancy indexings)."""
    img = np.asarray(img)
    h, w = img.shape[:2]
    flat = _PIXELS.get((h, w))
    if flat is None:
        rows = np.arange(IMAGE_HW[0]) * h // IMAGE_HW[0]
        cols = np.arange(IMAGE_HW[1]) * w // IMAGE_HW[1]
        flat = _PIXELS[(h, w)] = (rows[:, None] * w + cols[None, :]).ravel()
    c = img.shape[2] if img.ndim == 3 else 1
    out = np.take(img.reshape(h * w, c), flat, axis=0)
    return out.reshape(IMAGE_HW[0], IMAGE_HW[1], c)


def resize_image(env):
    """(H, W[, C]) uint8 frames -> (64, 64, C) by nearest-neighbour sampling."""
    d = env.observation_desc
    shape = list(d["shape"])
    c = shape[2] if len(shape) == 3 else 1
    return Transformed(env, _resize, _uint8_image_desc([IMAGE_HW[0], IMAGE_HW[1], c]))


def _uint8_image_desc(shape):
    """The wire description of a Box of uint8 pixels in [0, 255] of this shape."""
    return {
        "type": "Box",
        "low": np.zeros(shape, np.uint8),
        "high": np.full(shape, 255, np.uint8),
        "dtype": "|u1",
        "shape": shape,
    }


def image_first_channels(env):
    """(H, W, C > 4) uint8 frames (e.g. pixels stacked with masks) -> their first 3 channels."""
    d = env.observation_desc
    desc = _uint8_image_desc(list(d["shape"][:2]) + [3])
    return Transformed(env, lambda obs: np.ascontiguousarray(np.asarray(obs)[..., :3]), desc)


def grid_as_image(env):
    """A grid observation (a Dict with an 'image' entry, e.g. MiniGrid) -> that grid as an image."""
    d = env.observation_desc
    sub = d["spaces"]["image"] if d["type"] == "Dict" else d
    desc = _uint8_image_desc(list(sub["shape"]))

    def fn(obs):
        grid = obs["image"] if d["type"] == "Dict" else obs
        return np.asarray(grid, np.uint8)

    return Transformed(env, fn, desc)


def discrete_to_box(env):
    """A Discrete observation -> its one-hot float32 vector."""
    return flatten_dict(env)


def _parts(value):
    return list(value.values()) if isinstance(value, dict) else value


def team_done(flag):
    """A done flag per agent (a list, tuple, array or dict, as multi-agent libraries return)
    -> whether the whole team is done (every agent); a single flag as a bool."""
    if isinstance(flag, (list, tuple, dict, np.ndarray)):
        parts = np.asarray(_parts(flag), dtype=bool).ravel()
        return bool(parts.size) and bool(parts.all())
    return bool(flag)


class SumReward(Wrapper):
    """A vector reward (multi-objective libraries such as mo-gymnasium) or a reward per agent
    (a list, or a dict such as mobile-env's) -> the sum of its parts; a done flag per agent
    -> done when every agent is."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        total = float(np.sum(_parts(reward)))
        return obs, total, team_done(terminated), team_done(truncated), info


class JointAction(Wrapper):
    """A Tuple or a Dict of Discrete actions (one per agent of a team under one controller,
    e.g. lbforaging's players, mobile-env's base stations) -> one MultiDiscrete action (a
    Dict's keys in sorted order, as flatten_dict takes them)."""

    def __init__(self, env):
        super().__init__(env)
        spaces = env.action_desc["spaces"]
        self.keys = sorted(spaces) if env.action_desc["type"] == "Dict" else None
        parts = [spaces[k] for k in self.keys] if self.keys is not None else spaces
        self.starts = [p["start"] for p in parts]
        self.action_desc = {"type": "MultiDiscrete", "nvec": np.array([p["n"] for p in parts])}

    def step(self, action):
        joint = [int(a) + s for a, s in zip(np.asarray(action).ravel(), self.starts)]
        return self.env.step(_per_agent(joint, self.keys))


class JointBox(Wrapper):
    """A Tuple or a Dict of Box actions (one continuous action per agent) -> one Box that
    concatenates them (flattened, a Dict's keys in sorted order); the env gets each agent's
    part back in its own shape and dtype."""

    def __init__(self, env):
        super().__init__(env)
        spaces = env.action_desc["spaces"]
        self.keys = sorted(spaces) if env.action_desc["type"] == "Dict" else None
        parts = [spaces[k] for k in self.keys] if self.keys is not None else spaces
        self.shapes = [tuple(p["shape"]) for p in parts]
        self.dtypes = [np.dtype(p["dtype"]) for p in parts]
        self.cuts = np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1]
        lows = [np.broadcast_to(p["low"], p["shape"]).ravel() for p in parts]
        highs = [np.broadcast_to(p["high"], p["shape"]).ravel() for p in parts]
        low, high = np.concatenate(lows), np.concatenate(highs)
        box = {"type": "Box", "low": low, "high": high, "dtype": "<f4", "shape": [len(low)]}
        self.action_desc = box

    def step(self, action):
        flat = np.asarray(action, dtype=np.float64).ravel()
        chunks = np.split(flat, self.cuts)
        joint = [c.reshape(s).astype(d) for c, s, d in zip(chunks, self.shapes, self.dtypes)]
        return self.env.step(_per_agent(joint, self.keys))


def _per_agent(joint, keys):
    return dict(zip(keys, joint)) if keys is not None else tuple(joint)


#: Attributes that count a team's agents, on the env itself (after its wrappers).
AGENT_COUNTS = ("n_agents", "num_agents", "nb_agents", "number_of_agents")


def agent_count(env):
    """How many agents an env steps together (an `agents` list or an `n_agents`-like count on
    the env under its wrappers), or 0 when it says nothing of a team."""
    seen = 0
    while env is not None and seen < 32:
        for name in AGENT_COUNTS:
            n = getattr(env, name, None)
            if isinstance(n, int) and not isinstance(n, bool) and n > 1:
                return n
        agents = getattr(env, "agents", None)
        if isinstance(agents, (list, tuple)) and len(agents) > 1:
            return len(agents)
        env = getattr(env, "unwrapped", None) if getattr(env, "env", None) is None else env.env
        seen += 1
    return 0


class TeamActions(Wrapper):
    """A team whose spaces describe one agent but whose `step` takes one action per agent
    (gym-multigrid: `Discrete(4)`, `step([a0, a1])`): k agents' actions as one MultiDiscrete
    (Discrete agents) or one Box (Box agents, concatenated), split into a list for the env."""

    def __init__(self, env, k):
        super().__init__(env)
        one = env.action_desc
        self.k, self.kind = k, one["type"]
        if self.kind == "Discrete":
            self.start = one["start"]
            self.action_desc = {"type": "MultiDiscrete", "nvec": np.full(k, one["n"])}
        else:
            self.shape, self.dtype = tuple(one["shape"]), np.dtype(one["dtype"])
            low = np.tile(np.broadcast_to(one["low"], one["shape"]).ravel(), k)
            high = np.tile(np.broadcast_to(one["high"], one["shape"]).ravel(), k)
            self.action_desc = {
                "type": "Box",
                "low": low,
                "high": high,
                "dtype": "<f4",
                "shape": [len(low)],
            }

    def step(self, action):
        flat = np.asarray(action).ravel()
        if self.kind == "Discrete":
            return self.env.step([int(a) + self.start for a in flat])
        parts = np.split(flat.astype(np.float64), self.k)
        return self.env.step([p.reshape(self.shape).astype(self.dtype) for p in parts])


def team_actions(env):
    """One action per agent for a team whose spaces describe one agent (decided from the
    env's agent count and its action space; others pass unchanged)."""
    k = agent_count(env)
    return TeamActions(env, k) if k > 1 and env.action_desc["type"] in ("Discrete", "Box") else env


#: the kind every agent's action space has -> the wrapper that joins them into one action
_JOINT = {"Discrete": JointAction, "Box": JointBox}


def joint_action(env):
    """A team's actions as one: Tuple/Dict of Discrete -> MultiDiscrete, of Box -> one Box
    (decided from the action space; others, mixed kinds included, pass unchanged)."""
    d = env.action_desc
    parts = list(d["spaces"].values()) if d["type"] == "Dict" else d.get("spaces", [])
    kinds = {p["type"] for p in parts}
    if d["type"] not in ("Tuple", "Dict") or len(kinds) != 1:
        return env
    join = _JOINT.get(kinds.pop())
    return join(env) if join else env


class SeedGlobalRNGs(Wrapper):
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


class DeriveResetSeeds(Wrapper):
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


class FireOnLifeLoss(Wrapper):
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


def _is_image(d):
    return (
        d["type"] == "Box"
        and np.dtype(d["dtype"]) == np.uint8
        and len(d["shape"]) in (2, 3)
        and d["shape"][0] > 16
    )


# name -> (wrapper, applies-to predicate on the observation description). A library's
# declared wrappers apply to each of its envs where they fit, so one spec can cover
# libraries that mix vector, dict and image envs.
WRAPPERS = {
    "flatten_dict": (flatten_dict, lambda d: d["type"] in ("Dict", "Tuple")),
    "flatten_obs": (
        flatten_obs,
        lambda d: d["type"] == "Box" and len(d["shape"]) > 1 and not _is_image(d),
    ),
    "resize_image": (
        resize_image,
        lambda d: _is_image(d) and list(d["shape"][:2]) != list(IMAGE_HW),
    ),
    "image_first_channels": (
        image_first_channels,
        lambda d: (
            d["type"] == "Box"
            and np.dtype(d["dtype"]) == np.uint8
            and len(d["shape"]) == 3
            and d["shape"][2] > 4
        ),
    ),
    "grid_as_image": (grid_as_image, lambda d: d["type"] == "Dict" and "image" in d["spaces"]),
    "discrete_to_box": (discrete_to_box, lambda d: d["type"] == "Discrete"),
    "seed_global_rngs": (SeedGlobalRNGs, lambda d: True),
    "sum_reward": (SumReward, lambda d: True),
    "joint_action": (joint_action, lambda d: True),  # decides on the action space itself
    "team_actions": (team_actions, lambda d: True),  # decides on the agent count and actions
    "fire_on_life_loss": (fire_on_life_loss, lambda d: True),  # decides on the action meanings
    "derive_reset_seeds": (DeriveResetSeeds, lambda d: True),
    "reseed_by_reconstruction": (reseed.ReseedByReconstruction, lambda d: True),  # first
    "seed_method_on_reset": (reseed.SeedMethodOnReset, lambda d: True),
    "settle_first_reset": (reseed.SettleFirstReset, lambda d: True),
    "seed_spaces": (reseed.SeedSpaces, lambda d: True),
    "clip_obs": (bounds.ClipObs, bounds.fits),
}


#: make kwarg that truncates every episode after this many steps (see StepLimit)
STEP_LIMIT_KWARG = "ldm_step_limit"


class StepLimit(Wrapper):
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


def apply(env, names):
    """Apply the declared wrappers, in order, where each fits the current observation space."""
    for name in names:
        wrap, fits = WRAPPERS[name]
        if fits(env.observation_desc):
            env = wrap(env)
    return env
