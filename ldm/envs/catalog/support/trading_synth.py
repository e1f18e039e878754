"""Registers gym-trading-env envs on synthetic prices (the library needs a DataFrame).

Runs inside the gym-trading-env venv (numpy, pandas, gymnasium, gym_trading_env).
"""

import gymnasium as gym
import numpy as np
import pandas as pd


def make_prices(n=3000, seed=0, vol=0.01):
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
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


def _make(seed=0, vol=0.01, **kwargs):
    from gym_trading_env.environments import TradingEnv

    return TradingEnv(
        df=make_prices(seed=seed, vol=vol),
        positions=[-1, 0, 1],
        max_episode_duration=500,
        verbose=0,
        **kwargs,
    )


for i, vol in enumerate((0.005, 0.01, 0.02)):
    gym.register(
        f"TradingEnv-synthetic-vol{i}-v0", entry_point=_make, kwargs={"seed": i, "vol": vol}
    )
