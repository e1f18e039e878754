"""Budgets by rule against the suite's hand budgets: the same candidate, env and seed, once with
the suite's budget (configs/suite.toml: its [refgen.budgets] entry or train_budget, gone on to
30 episodes up to 3x) and once ended by the wide run's rule (configs/wide.toml's
[refgen.auto_budget]).

Per env and mode: why the run stopped, transitions, seconds, the mean return of its last tenth,
curation's p (last tenth > first tenth) and the mean return of its deterministic policy over
10 checked episodes (what the reference plays). Keys: `envs` (that table), `seconds_hand`,
`seconds_auto` (totals), `auto_passes` / `hand_passes` (runs whose p < 0.05).
"""

import sys
import tempfile
import time
from pathlib import Path

import tomllib

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report, run_quality  # noqa: E402

from ldm.refgen.autobudget import AutoBudget  # noqa: E402
from ldm.refgen.candidates import load_pool  # noqa: E402
from ldm.refgen.jobs import Job, run_job  # noqa: E402

ROOT = Path(__file__).parents[1]
ENVS = ["classic-control/Acrobot-v1", "toy-text/FrozenLake-v1", "classic-control/CartPole-v1"]


def one(job: Job) -> dict:
    t0 = time.perf_counter()
    result = run_job(job)
    seconds = time.perf_counter() - t0
    return {
        "stop": result.stop.reason,
        "transitions": result.transitions,
        "seconds": round(seconds, 1),
        **run_quality(job.store, result.run_id),
    }


def main() -> None:
    a = args(__doc__, lambda p: p.add_argument("--env", action="append", help="suite env ids"))
    suite = tomllib.loads((ROOT / "configs/suite.toml").read_text())["refgen"]
    rule = AutoBudget(
        **tomllib.loads((ROOT / "configs/wide.toml").read_text())["refgen"]["auto_budget"]
    )
    envs = ["classic-control/CartPole-v1"] if a.quick else (a.env or ENVS)
    if a.quick:  # about a minute: CartPole, 10k transitions each way
        rule = AutoBudget(**{**rule.__dict__, "max_transitions": 10000, "min_transitions": 5000})
    # the seconds cap lifted: on the shared 2-core machine (load 10-16 while this ran) a
    # wall-clock cap measures the neighbours; this compares what the rule decides
    rule = AutoBudget(**{**rule.__dict__, "max_seconds": 3600.0})
    cand = {c.name: c for c in load_pool()}["ppo-8env"]
    table = {}
    with tempfile.TemporaryDirectory() as d:
        for env in envs:
            lib = env.split("/")[0]
            budget = 10000 if a.quick else suite["budgets"].get(env, suite["train_budget"])
            hand = Job("train", env, lib, cand, budget, 0, d, min_episodes=30,
                       max_budget=3 * budget, check_episodes=10)  # fmt: skip
            auto = Job("train", env, lib, cand, rule.max_transitions, 0, d, check_episodes=10,
                       auto=rule)  # fmt: skip
            table[env] = {"hand": one(hand), "auto": one(auto)}
            print(env, table[env], flush=True)
    report(
        {
            "envs": table,
            "seconds_hand": round(sum(t["hand"]["seconds"] for t in table.values()), 1),
            "seconds_auto": round(sum(t["auto"]["seconds"] for t in table.values()), 1),
            "hand_passes": sum((t["hand"]["p"] or 1) < 0.05 for t in table.values()),
            "auto_passes": sum((t["auto"]["p"] or 1) < 0.05 for t in table.values()),
            "rule": rule.__dict__,
        }
    )


if __name__ == "__main__":
    main()
