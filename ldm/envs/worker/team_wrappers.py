"""Declared wrappers for teams and multi-part rewards: a reward per agent or per objective
summed, a done flag per agent read as the team's, a team's actions joined into one
(`joint_action`), one action per agent for a team whose spaces describe one (`team_actions`).

Imports: standard library, numpy and its sibling wrapper_base.py (runs in each library's own
venv, Python 3.6).
"""

import numpy as np

try:  # run as a script: siblings are on sys.path[0]
    import wrapper_base
except ImportError:  # imported as a package by the client / in-process backend
    from ldm.envs.worker import wrapper_base


def _parts(value):
    return list(value.values()) if isinstance(value, dict) else value


def team_done(flag):
    """A done flag per agent (a list, tuple, array or dict, as multi-agent libraries return)
    -> whether the whole team is done (every agent); a single flag as a bool."""
    if isinstance(flag, (list, tuple, dict, np.ndarray)):
        parts = np.asarray(_parts(flag), dtype=bool).ravel()
        return bool(parts.size) and bool(parts.all())
    return bool(flag)


class SumReward(wrapper_base.Wrapper):
    """A vector reward (multi-objective libraries such as mo-gymnasium) or a reward per agent
    (a list, or a dict such as mobile-env's) -> the sum of its parts; a done flag per agent
    -> done when every agent is."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        total = float(np.sum(_parts(reward)))
        return obs, total, team_done(terminated), team_done(truncated), info


class JointAction(wrapper_base.Wrapper):
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


class JointBox(wrapper_base.Wrapper):
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


class TeamActions(wrapper_base.Wrapper):
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
