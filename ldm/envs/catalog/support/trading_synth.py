"""Registers gym-trading-env envs on synthetic prices (the library needs a DataFrame).

- `TradingEnv-synthetic-vol{0,1,2}-v0`: geometric random walks. Nothing there can be learnt
  (every policy earns zero in expectation): kept as a control, never given a reference.
- `TradingEnv-regimes-v0`: a market with learnable structure. Log returns follow an AR(1)
  process whose drift and autocorrelation switch between three hidden regimes (up-trend,
  down-trend: persistent returns; range: mean-reverting ones) with a Markov chain (about 1%
  switches per step), so the last returns (the `feature_return` observation) predict the
  next one and a policy that follows trends and fades ranges earns steadily.

Runs inside the gym-trading-env venv (numpy, pandas, gymnasium, gym_trading_env).

Must not import ldm (not installed in a library's venv): only the libraries named above and
the standard library.
"""

import gymnasium as gym
import numpy as np
import pandas as pd


def _frame(close, rng, vol):
    n = len(close)
    spread = np.abs(rng.normal(0.0, vol / 2, n)) * close
    df = pd.DataFrame(
        {
            "open": np.roll(close, 1),
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.uniform(1e3, 1e4, n),
        },
        index=pd.date_range("2020-01-01", periods=n, freq="h"),
    )
    df["feature_return"] = df["close"].pct_change().fillna(0.0)
    df["feature_range"] = (df["high"] - df["low"]) / df["close"]
    df["feature_volume"] = df["volume"] / df["volume"].max()
    return df


#: regime -> (drift per step, autocorrelation of returns)
REGIMES = ((0.002, 0.3), (-0.002, 0.3), (0.0, -0.4))


def regime_returns(n=3000, seed=0, vol=0.005, switch=0.01):
    """Log returns of the regime-switching AR(1) market (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n)
    regime = 0
    for t in range(1, n):
        if rng.random() < switch:
            regime = int(rng.integers(len(REGIMES)))
        mu, phi = REGIMES[regime]
        out[t] = mu + phi * out[t - 1] + rng.normal(0.0, vol)
    return out


def make_prices(n=3000, seed=0, vol=0.01, structure="random_walk"):
    if structure == "regimes":
        close = 100.0 * np.exp(np.cumsum(regime_returns(n, seed, vol)))
        return _frame(close, np.random.default_rng(seed + 1), vol)
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    return _frame(close, rng, vol)


def _make(seed=0, vol=0.01, structure="random_walk", **kwargs):
    from gym_trading_env.environments import TradingEnv

    return TradingEnv(
        df=make_prices(seed=seed, vol=vol, structure=structure),
        positions=[-1, 0, 1],
        max_episode_duration=500,
        verbose=0,
        **kwargs,
    )


for i, vol in enumerate((0.005, 0.01, 0.02)):
    gym.register(
        f"TradingEnv-synthetic-vol{i}-v0", entry_point=_make, kwargs={"seed": i, "vol": vol}
    )

gym.register(
    "TradingEnv-regimes-v0",
    entry_point=_make,
    kwargs={"seed": 7, "vol": 0.005, "structure": "regimes"},
)
