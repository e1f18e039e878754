"""The suite's SAC jobs with SB3 and with Stable-Baselines-Jax, side by side (issue 32, item 2).

`ldm run configs/suite.toml --profile jax` changes one thing in the suite's reference stage:
its SAC candidate, `sac-4env` (SB3), becomes `sbx-sac-4env` (the same settings in JAX). Every
other job is the same job. So the stage's difference is the difference of its SAC jobs, and
this benchmark measures exactly those: for each continuous-action env of configs/suite.toml
(or `--env`), the SB3 job and the JAX job with the suite's budget, seed 0, min_episodes and
deterministic check, each a real `run_job` (recorded, relabelled, in a fresh process, JAX's
compilation counted). The two jobs of an env run AT THE SAME TIME, one per core, so a
neighbour's load falls on both alike; the wall-clock ratio is read per pair.

Per env and framework: wall and CPU seconds, transitions, where the time went (`time_split`),
the last tenth's mean return, curation's p (last tenth > first tenth) and the deterministic
play. Keys: `envs` (that table), `sb3_seconds`, `jax_seconds` (sums over the pairs),
`stage_speedup` (their ratio: the SAC part of the stage), `cpu_speedup`, `jax_check_ge`
(pairs where JAX's deterministic play >= SB3's), `jax_passes` / `sb3_passes` (p < 0.05).
`--quick`: Pendulum at 1,500 transitions (the compilation is most of it).
"""

import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import tomllib

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report, run_quality  # noqa: E402

ROOT = Path(__file__).parents[1]
PAIR = ("sac-4env", "sbx-sac-4env")


def _cpu() -> float:
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def one(job) -> dict:  # noqa: ANN001 (a Job; ldm imported in the pool's fresh process)
    from ldm.data import Store
    from ldm.refgen.jobs import run_job

    t0, c0 = time.perf_counter(), _cpu()
    result = run_job(job)
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    if result.status != "done":
        return {"status": result.status, "error": result.error, "seconds": round(seconds, 1)}
    meta = Store(job.store).open_run(result.run_id).meta
    return {
        "status": "done",
        "seconds": round(seconds, 1),
        "cpu": round(cpu, 1),
        "transitions": result.transitions,
        "time_split": meta.extra.get("time_split", {}),
        **run_quality(job.store, result.run_id),
    }


def jobs_of(env: str, suite: dict, store: str, quick: bool) -> list:
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.jobs import Job

    pool = {c.name: c for c in load_pool()}
    budget = 1500 if quick else suite["budgets"].get(env, suite["train_budget"])
    eps = 0 if quick else suite["min_episodes"]
    return [
        Job(
            "train",
            env,
            env.split("/")[0],
            pool[name],
            budget,
            0,
            store,
            min_episodes=eps,
            max_budget=int(budget * suite["max_budget_factor"]) if eps else 0,
            check_episodes=3 if quick else suite["check_episodes"],
        )  # fmt: skip
        for name in PAIR
    ]


def continuous_envs(suite: dict) -> list[str]:
    from ldm.envs import env_spaces

    return [e for e in suite["envs"] if env_spaces(e)[1].kind == "continuous"]


def main() -> None:
    a = args(__doc__, lambda p: p.add_argument("--env", action="append", help="suite env ids"))
    suite = tomllib.loads((ROOT / "configs/suite.toml").read_text())["refgen"]
    envs = ["classic-control/Pendulum-v1"] if a.quick else (a.env or continuous_envs(suite))
    table: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as d:
        for env in envs:  # a fresh process per job: JAX's one-thread client starts per process
            with ProcessPoolExecutor(max_workers=2, max_tasks_per_child=1) as ex:
                sb3, jax = ex.map(one, jobs_of(env, suite, d, a.quick))
            table[env] = {"sb3": sb3, "jax": jax}
            print(env, table[env], flush=True)
    done = {e: t for e, t in table.items() if t["sb3"]["status"] == t["jax"]["status"] == "done"}

    def total(side: str, key: str) -> float:
        return round(sum(t[side][key] for t in done.values()), 1)

    report(
        {
            "envs": table,
            "pairs": len(done),
            "sb3_seconds": total("sb3", "seconds"),
            "jax_seconds": total("jax", "seconds"),
            "stage_speedup": round(total("sb3", "seconds") / max(total("jax", "seconds"), 1e-9), 3),
            "cpu_speedup": round(total("sb3", "cpu") / max(total("jax", "cpu"), 1e-9), 3),
            # pairs whose deterministic plays both exist and JAX's is at least SB3's
            "jax_check_ge": sum(
                t["jax"]["check"] is not None
                and t["sb3"]["check"] is not None
                and t["jax"]["check"] >= t["sb3"]["check"]
                for t in done.values()
            ),
            "sb3_passes": sum((t["sb3"]["p"] or 1) < 0.05 for t in done.values()),
            "jax_passes": sum((t["jax"]["p"] or 1) < 0.05 for t in done.values()),
        }
    )


if __name__ == "__main__":
    main()
