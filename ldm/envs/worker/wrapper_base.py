"""The declared wrappers' base classes: `Wrapper` (passes everything through and keeps the
space descriptions) and `Transformed` (observations through a function, a new description).

Imports: standard library only (runs in each library's own venv, Python 3.6).
"""


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
