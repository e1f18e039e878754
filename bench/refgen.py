"""Reference generation: the cost of recording SB3 training into the store, relabelling speed,
and the JAX candidates (Stable-Baselines-Jax) against their SB3 counterparts.

Keys: recording_overhead (time with recording / time without, same job; goal <= 1.10),
relabel_obs_per_s; jax_sac_speedup (sbx-sac's transitions/s over sac's, same env, budget and
settings, one run each; goal >= 4 at equal or better final return) and `jax` (per pair: each
run's transitions/s, final return, and where its time went). Every run is a real `run_job`:
recorded, relabelled, its time counted from before the model is built (JAX's jit compilation
included) to the end of training; `jax_sac_cpu_speedup` is the same ratio per CPU second of
the job process (less moved by a shared machine's load). `--quick`: the recording overhead
from 1,000-transition jobs (the best of two each, as the full run: the first job of a process
pays its imports), then Pendulum, 300 transitions,
sbx-sac vs sac only (its returns say nothing yet), both jobs in this process (JAX still
compiles inside the sbx job, its first; a fresh interpreter per job doubled a quick run's
CPU time with imports).
"""

import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402

from ldm.data import Store  # noqa: E402
from ldm.refgen.candidates import load_pool  # noqa: E402
from ldm.refgen.curate import relabel_run  # noqa: E402
from ldm.refgen.jobs import Job, run_job  # noqa: E402

#: (JAX candidate, its SB3 counterpart): the same algorithm and settings but sbx-crossq's,
#: which is compared with SB3's SAC (CrossQ is SAC without target networks)
PAIRS = {
    "sac": ("sbx-sac", "sac"),
    "tqc": ("sbx-tqc", "tqc"),
    "td3": ("sbx-td3", "td3"),
    "crossq": ("sbx-crossq", "sac"),
    "sac-4env": ("sbx-sac-4env", "sac-4env"),
}


def extra(p) -> None:  # noqa: ANN001
    p.add_argument("--env", default="mujoco/HalfCheetah-v5", help="env of the JAX pairs")
    p.add_argument("--budget", type=int, default=20000, help="transitions of each JAX-pair run")
    p.add_argument("--pairs", default="sac,sac-4env", help=f"comma-separated, of {list(PAIRS)}")
    p.add_argument("--jax-only", action="store_true", help="skip the recording-overhead runs")


def recording_overhead(budget: int) -> dict:
    cand = {c.name: c for c in load_pool()}["ppo-8env"]
    with tempfile.TemporaryDirectory() as d:
        times = {True: [], False: []}
        for rep in range(2):
            for record in (False, True):
                # a new seed per repetition: a recorded job of the same key would be reused
                job = Job(
                    "train",
                    "classic-control/CartPole-v1",
                    "classic-control",
                    cand,
                    budget,
                    rep,
                    d,
                    record=record,
                )
                t0 = time.perf_counter()
                out = run_job(job)
                times[record].append(time.perf_counter() - t0)
        store = Store(d)
        t0 = time.perf_counter()
        n = relabel_run(store, out.run_id)
        relabel = n / (time.perf_counter() - t0)
    return {
        "recording_overhead": round(min(times[True]) / min(times[False]), 3),
        "seconds_with_recording": round(min(times[True]), 2),
        "seconds_without": round(min(times[False]), 2),
        "transitions": budget,
        "relabel_obs_per_s": round(relabel),
    }


def fresh_process_job(job: Job):  # noqa: ANN201
    """`run_job` in a process of its own: JAX compiles there as in a job of the stage."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as ex:
        return ex.submit(run_job, job).result()


def jax_pairs(env_id: str, budget: int, pairs: list[str], fresh: bool = True) -> dict:
    """Each pair's two runs in turns (JAX first), same env, budget and seed, each run in a
    fresh process (`fresh`) or in this one."""
    pool = {c.name: c for c in load_pool()}
    out: dict = {}
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        for pair in pairs:
            out[pair] = {}
            for name in PAIRS[pair]:
                job = Job("train", env_id, env_id.split("/")[0], pool[name], budget, 0, d)
                try:
                    res = fresh_process_job(job) if fresh else run_job(job)
                except Exception as e:  # e.g. no episode within the budget: say so, go on
                    out[pair][name] = {"error": f"{type(e).__name__}: {e}"}
                    continue
                meta = store.open_run(res.run_id).meta
                out[pair][name] = {
                    "transitions_per_s": round(res.transitions / res.seconds, 1),
                    # per CPU second of the job process: less moved by the machine's load
                    "transitions_per_cpu_s": round(
                        res.transitions / meta.extra["time_split"]["cpu"], 1
                    ),
                    "final_return": round(sum(res.final_returns) / len(res.final_returns), 1),
                    "first_return": round(sum(res.first_returns) / len(res.first_returns), 1),
                    "episodes": res.episodes,
                    "time_split": meta.extra["time_split"],
                }
            if any("error" in out[pair][n] for n in PAIRS[pair]):
                continue
            for key, rate in (
                ("speedup", "transitions_per_s"),
                ("cpu_speedup", "transitions_per_cpu_s"),
            ):
                jax, torch = (out[pair][n][rate] for n in PAIRS[pair])
                out[pair][key] = round(jax / torch, 2)
    return out


def main() -> None:
    a = args(__doc__, extra)
    if a.quick:
        env_id, budget, pairs = "classic-control/Pendulum-v1", 300, ["sac"]
    else:
        env_id, budget, pairs = a.env, a.budget, a.pairs.split(",")
    unknown = sorted(set(pairs) - set(PAIRS))
    if unknown:
        raise SystemExit(f"--pairs: unknown {unknown}; choose from {list(PAIRS)}")
    if a.jax_only:
        result = {}
    else:
        result = recording_overhead(1000 if a.quick else 40000)
    jax = jax_pairs(env_id, budget, pairs, fresh=not a.quick)
    sac = jax.get("sac", {})
    report(
        {
            **result,
            "jax_sac_speedup": sac.get("speedup"),
            "jax_sac_cpu_speedup": sac.get("cpu_speedup"),
            "jax_sac_return_vs_sb3": (
                round(sac["sbx-sac"]["final_return"] - sac["sac"]["final_return"], 1)
                if "speedup" in sac
                else None
            ),
            "jax_env": env_id,
            "jax_budget": budget,
            "jax": jax,
            "cpus": len(os.sched_getaffinity(0)),
        }
    )


if __name__ == "__main__":
    main()
