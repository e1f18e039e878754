"""Re-seeding what `reset(seed=s)` does not reach: the declared wrappers
`reseed_by_reconstruction`, `seed_method_on_reset`, `settle_first_reset` and `seed_spaces`
(the last two: see their classes).

`seed_method_on_reset`: envs ported to Gymnasium whose generators are still seeded only by
their own old `seed(s)` method (neurogym's `self.rng`, `seed()` also seeding its timing
distributions): `reset(seed=s)` seeds Gymnasium's `np_random`, which they never draw from. The
wrapper calls the env's `seed(s)` before each seeded reset.

`reseed_by_reconstruction`: some envs cannot be re-seeded in place, so `reset(seed=s)` twice
does not give the same episode:
- envs that take their seed only at construction (procgen under gym 0.26: `rand_seed`; its
  `reset` takes no seed at all);
- envs whose `reset` reads state an earlier episode left behind (lbforaging 2.0 spawns its
  players on cells it tests against the *previous* episode's player positions).

For both, a seeded reset closes the env and makes it again (the same id and make kwargs), then
resets the new one: with the seed in the constructor keyword the spec names (make kwarg
`ldm_seed_kwarg`, e.g. `rand_seed` for procgen), else with `reset(seed=s)`. An unseeded reset
(a rollout's later episodes) continues the same instance, so those episodes follow from the
seed too. The worker's `Instance` hands the env a `ldm_remake(seed)` callable that builds the
new env already adapted to the Gymnasium API, with its space descriptions.

Imports: standard library only (runs in each library's own venv; the worker imports it as a
sibling of wrappers.py). Must not import wrappers.py (which imports this file).
"""

#: make kwarg naming the env constructor's seed keyword (popped by the worker before make)
SEED_KWARG = "ldm_seed_kwarg"

#: a constructor's seed must fit a C int in the libraries that take one (procgen: int32)
SEED_MODULUS = 2**31 - 1


def pop_seed_kwarg(kwargs, wrapper_names):
    """The constructor's seed keyword a spec names (make kwarg SEED_KWARG), taken out of the
    make kwargs; None when it names none. Naming one needs `reseed_by_reconstruction`."""
    name = kwargs.pop(SEED_KWARG, None)
    if name and "reseed_by_reconstruction" not in wrapper_names:
        raise ValueError(
            "make kwarg %s=%r needs the reseed_by_reconstruction wrapper in the spec's "
            "`wrappers`" % (SEED_KWARG, name)
        )
    return name


def remaker(make, env_id, kwargs, seed_kwarg):
    """`remake(seed)` -> the library's env made again by `make(env_id, kwargs)` (the worker's
    make, which returns (env, render mode)), with the seed in `seed_kwarg` if one is named."""

    def remake(seed):
        again = dict(kwargs)
        if seed_kwarg:
            again[seed_kwarg] = seed
        return make(env_id, again)[0]

    remake.seed_kwarg = seed_kwarg
    return remake


def adopting(remake, adopt):
    """`ldm_remake(seed)`: `adopt(remake(seed))`, the new env as the wrappers take it (the
    Gymnasium API, space descriptions), keeping `remake.seed_kwarg`."""

    def again(seed):
        return adopt(remake(seed))

    again.seed_kwarg = remake.seed_kwarg
    return again


def find_remake(env):
    """The `ldm_remake` callable the worker attached to the env under the declared wrappers
    (the wrapper must come first: it replaces that env, and wrappers below it would be lost)."""
    remake = getattr(env, "ldm_remake", None)
    if not callable(remake):
        raise ValueError(
            "reseed_by_reconstruction must be the first of a spec's `wrappers` (it replaces "
            "the env the worker made, which carries `ldm_remake`); it was given %s"
            % type(env).__name__
        )
    return remake


class ReseedByReconstruction:
    """A seeded reset makes the env again and resets the new instance (see the module)."""

    def __init__(self, env):
        self.env = env
        self.observation_desc = env.observation_desc
        self.action_desc = env.action_desc
        self.remake = find_remake(env)
        self.seed_kwarg = getattr(self.remake, "seed_kwarg", None)

    def reset(self, seed=None, options=None):
        if seed is not None:
            fresh = self.remake(int(seed) % SEED_MODULUS if self.seed_kwarg else None)
            self.env.close()
            self.env = fresh
            if self.seed_kwarg:  # seeded at construction: its reset takes no seed
                seed = None
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        return self.env.step(action)

    def close(self):
        self.env.close()


def _base_env(env):
    """The library's env under ldm's wrappers (its `unwrapped`, through any gym wrappers)."""
    seen = 0
    while env is not None and seen < 32:
        if hasattr(env, "unwrapped"):
            return env.unwrapped
        env = getattr(env, "env", None)
        seen += 1
    return None


class SeedMethodOnReset:
    """A seeded reset first calls the env's own `seed(s)` (see the module)."""

    def __init__(self, env):
        self.env = env
        self.observation_desc = env.observation_desc
        self.action_desc = env.action_desc
        base = _base_env(env)
        self.seed_fn = getattr(base, "seed", None)
        if not callable(self.seed_fn):
            raise ValueError(
                "seed_method_on_reset: %s has no seed() method; leave the wrapper out of its "
                "spec" % type(base).__name__
            )

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.seed_fn(int(seed) % 2**32)
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        return self.env.step(action)

    def close(self):
        self.env.close()


class SettleFirstReset:
    """An instance's first reset is done twice (the second with the same seed), so that it
    starts like every later reset of the same seed.

    For envs whose construction leaves state that their first reset does not overwrite but
    every later one does (safety-gymnasium's Car and Racecar agents: a fresh instance's first
    observation differs in its last bits from every later `reset(seed=s)`). Cheaper than
    `reseed_by_reconstruction`: one extra reset per instance, none per episode.
    """

    def __init__(self, env):
        self.env = env
        self.observation_desc = env.observation_desc
        self.action_desc = env.action_desc
        self.settled = False

    def reset(self, seed=None, options=None):
        if not self.settled:
            self.settled = True
            self.env.reset(seed=seed, options=options)
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        return self.env.step(action)

    def close(self):
        self.env.close()


class SeedSpaces:
    """A seeded reset first seeds the env's own observation and action spaces with the seed.

    For envs that draw their next state from their space's generator (cymnasium's HIDS:
    `self.state = self.observation_space.sample()`), which `reset(seed=s)` never seeds.
    """

    def __init__(self, env):
        self.env = env
        self.observation_desc = env.observation_desc
        self.action_desc = env.action_desc
        self.base = _base_env(env)

    def reset(self, seed=None, options=None):
        if seed is not None:
            for name in ("observation_space", "action_space"):
                space = getattr(self.base, name, None)
                if callable(getattr(space, "seed", None)):
                    space.seed(int(seed) % 2**32)
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        return self.env.step(action)

    def close(self):
        self.env.close()
