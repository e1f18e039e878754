"""`ldm.envs.sb3_vec_env` as SB3 users run it: episode records in the infos, so that
`ep_rew_mean` is logged and `evaluate_policy` counts whole episodes without a Monitor warning."""

import csv
import warnings

import numpy as np

import ldm.envs as E

CARTPOLE = "classic-control/CartPole-v1"


class _Constant:
    """An SB3-style policy that always pushes left (CartPole episodes of ~10 steps)."""

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return np.zeros(len(obs), np.int64), state


def test_episode_records_reach_sb3_logs_and_evaluate_policy(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.logger import configure

    venv = E.sb3_vec_env(CARTPOLE, 2, workers=1)
    try:
        model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0)
        model.set_logger(configure(str(tmp_path), ["csv"]))
        model.learn(total_timesteps=128)
        rows = list(csv.DictReader((tmp_path / "progress.csv").read_text().splitlines()))
        assert rows and float(rows[-1]["rollout/ep_rew_mean"]) > 5
        # CartPole pays 1 a step: each record's return is its length
        assert model.ep_info_buffer and all(e["r"] == e["l"] for e in model.ep_info_buffer)

        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*Monitor")
            returns, lengths = evaluate_policy(
                _Constant(), venv, n_eval_episodes=4, return_episode_rewards=True
            )
        assert len(returns) == 4 and returns == [float(n) for n in lengths]
        assert all(5 <= n <= 20 for n in lengths)
    finally:
        venv.close()
