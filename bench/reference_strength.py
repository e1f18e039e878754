"""References against the field's expert: how strong a reference a candidate reaches at a budget.

Each probe trains one candidate of the pool (never tuned per env) on one env for a budget of
transitions, as refgen does (recorded, relabelled), then its final policy plays 10 episodes
deterministically (the curation check). Reported per probe: wall seconds, transitions/s, the
last tenth of training returns, the deterministic play's mean and its expert-normalised score
(R - random) / (expert - random), with expert from ldm/eval/experts.toml and random from the
random-score cache (measured when missing).

Keys: probes (list), quick_expert_normalised (CartPole, ppo-8env, 5k transitions).
`--probe ENV:CANDIDATE:BUDGET` (repeatable) picks the probes; default: the quick one.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402

from ldm.data import Store  # noqa: E402
from ldm.eval.experts import expert_normalised_score, expert_score  # noqa: E402
from ldm.eval.random_scores import random_scores  # noqa: E402
from ldm.refgen.candidates import load_pool  # noqa: E402
from ldm.refgen.jobs import Job, run_job  # noqa: E402

QUICK = "classic-control/CartPole-v1:ppo-8env:5000"


def probe(spec: str, store: str) -> dict:
    """Train and check one ENV:CANDIDATE:BUDGET; its figures."""
    env_id, name, budget = spec.rsplit(":", 2)
    cand = {c.name: c for c in load_pool()}[name]
    job = Job("train", env_id, env_id.split("/", 1)[0], cand, int(budget), 0, store,
              check_episodes=10)  # fmt: skip
    t0 = time.perf_counter()
    result = run_job(job)
    seconds = time.perf_counter() - t0
    play = float(np.mean(Store(store).open_run(result.run_id).meta.extra["check_returns"]))
    expert = expert_score(env_id)
    rnd = random_scores([env_id])[env_id].mean
    score = None
    if expert is not None and rnd is not None:
        score = expert_normalised_score(play, rnd, expert.expert)
    return {
        "env": env_id,
        "candidate": name,
        "budget": int(budget),
        "seconds": round(seconds, 1),
        "transitions_per_s": round(result.transitions / result.seconds, 1),
        "last10": round(float(np.mean(result.final_returns)), 2),
        "deterministic_play": round(play, 2),
        "random": None if rnd is None else round(rnd, 2),
        "expert": None if expert is None else expert.expert,
        "expert_normalised": None if score is None else round(score, 3),
    }


def main() -> None:
    a = args(__doc__, lambda p: p.add_argument("--probe", action="append", default=[]))
    specs = [QUICK] if a.quick or not a.probe else a.probe
    out = []
    with tempfile.TemporaryDirectory(prefix="ldm-refstrength-") as d:
        for spec in specs:
            out.append(probe(spec, d))
            print(out[-1], flush=True)
    quick = next((p["expert_normalised"] for p in out if p["env"] in QUICK), None)
    report({"probes": out, "quick_expert_normalised": quick})


if __name__ == "__main__":
    main()
