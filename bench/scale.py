"""The data layer at the paper's counts, simulated: synthetic stores of many tiny runs.

Per store size N (runs; 100, 1,000 and 10,000, `--quick` 6, 18 and 54) over E = min(3,000,
0.3 N) envs (real catalog env ids first, then synthetic ones), each run 64 transitions whose
metadata lists 2,000 episodes (a 3M-transition run's), time and peak memory of:
opening the store (manifest), `ldm data stats`, `ldm data verify`, the sampler's start-up and
its windows/s, the refgen planner on the E envs x the pool (top 3 candidates each), the
evaluation's start-up (env list, reference runs, spaces, step limits) and the report of a
synthetic EvalResult for min(1,000, E) envs. Every size runs in its own process (`--quick`: all
in one, its imports and caches loaded before the first is timed); peak memory is the process's
high-water RSS (VmHWM, reset before each figure through /proc/self/clear_refs). The stores are
built quickly (`build`: a few runs recorded by the writer, the others hard-linked copies),
under $SCALE_TMP (default the system's temporary directory; 10,000 runs take ~2 GB there).

Windows/s is measured with the chunk cache off (every window reads its chunks from disk, as
in a store far larger than the cache) after every run's arrays were opened once, so it
compares the sampler's own per-window work across sizes, not how much of a small store fits
in the cache. Times are CPU seconds of the measuring process (`cpu_s`; the machine this runs
on is shared, and wall time there says more about the neighbours), wall seconds beside them
(`s`).

Keys of the last line: sampler_flatness (windows per CPU second at the largest N over the
smallest; goal ~1), growth_exponent_max (the largest fitted exponent of a figure's CPU time
against N; goal <= 1), startup_s_max (wall) and peak_gib_max at the largest N (goals <= 30 s
and <= 4 GiB), and the figures per N.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402

from ldm.data import Store  # noqa: E402
from ldm.spaces import SpaceSpec  # noqa: E402

STEPS = 64  # transitions per run: 2 chunks of 32 per column
TEMPLATES = 4  # distinct recorded runs; the others are copies of them under other ids
OBS = SpaceSpec("continuous", (4,), low=(-5.0,) * 4, high=(5.0,) * 4)
ACT = SpaceSpec("discrete", (), "int64", n=2)
WINDOW = 32
#: episodes a run's meta.json lists, as a 3M-transition run of 1,500-step episodes has (its
#: arrays hold STEPS transitions: the metadata's size is what grows memory with the runs)
EPISODES = 2000


def n_envs(runs: int) -> int:
    return min(3000, max(1, int(np.ceil(0.3 * runs))))


def env_ids(count: int) -> list[str]:
    """`count` env ids: the catalog's first (real ids, recorded spaces), then synthetic."""
    from ldm.envs import list_envs

    real = sorted(e.id for e in list_envs())[:count]
    return real + [f"synthetic/Env{i}-v0" for i in range(count - len(real))]


# -- building a store --------------------------------------------------------------------------
def _template(store: Store, seed: int) -> str:
    rng = np.random.default_rng(seed)
    w = store.create_run("synthetic/Template-v0", "synthetic", OBS, ACT, 1,
                         {"algorithm": "PPO"}, chunk_steps=32)  # fmt: skip
    for t in range(STEPS):
        done = np.array([(t + 1) % 8 == 0])
        w.append(rng.normal(size=(1, 4)), rng.integers(0, 2, 1), rng.normal(size=1) + t / 50,
                 done, np.zeros(1, bool))  # fmt: skip
    rid = w.commit()
    store.write_reference_actions(rid, 0, store.open_run(rid).read(0, "actions"))
    returns = rng.normal(size=EPISODES).cumsum().tolist()
    episodes = [{"stream": 0, "return": r, "length": 1500, "end": 1500 * (i + 1) - 1}
                for i, r in enumerate(returns)]  # fmt: skip
    store.update_meta(rid, {"curation": {"verdict": "pass"}, "episodes": episodes,
                            "episode_returns": returns})  # fmt: skip
    return rid


def templates(scratch: Path) -> list[_Copier]:
    """TEMPLATES runs recorded by the writer into a store at `scratch`, ready to be copied."""
    store = Store(scratch)
    return [_Copier(store, _template(store, s)) for s in range(TEMPLATES)]


def build(path: Path, runs: int, made: list[_Copier] | None = None) -> float:
    """A store of `runs` committed, relabelled, curated runs over n_envs(runs) envs, in
    seconds: TEMPLATES runs recorded by the writer (`Store.create_run`), the rest their
    copies under other ids and envs: data hard-linked file by file, meta.json the template's
    with the run's env spliced in (never parsed again), and the manifest entries the
    templates' with the run's env, written by `Store.set_manifest_entries` in one update.
    What the store holds is what the writer and relabelling write; only the copying is quick
    (~1 ms a run; `Store.reconcile` parsed every copy's 2,000 episodes: ~50 ms a run)."""
    t0 = time.perf_counter()
    scratch = path.parent / (path.name + "-templates")
    made = made or templates(scratch)
    ids = env_ids(n_envs(runs))
    store = Store(path)
    entries = {}
    for i in range(runs):
        env = ids[i % len(ids)]
        rid = f"{env.replace('/', '__')}-r{i}"
        entries[rid] = made[i % TEMPLATES].copy(store.path / "runs" / rid, env)
    store.set_manifest_entries(entries)
    shutil.rmtree(scratch, ignore_errors=True)
    return time.perf_counter() - t0


class _Copier:
    """One template run, ready to be copied: its files, its metadata as JSON without the
    env's two keys, its manifest entry."""

    def __init__(self, store: Store, run_id: str) -> None:
        src = store.path / "runs" / run_id
        data = src / "data.zarr"
        self.data = data
        self.dirs = sorted(str(p.relative_to(src)) for p in data.rglob("*") if p.is_dir())
        self.files = sorted(str(p.relative_to(src)) for p in data.rglob("*") if p.is_file())
        meta = json.loads((src / "meta.json").read_text())
        del meta["env_id"], meta["library"]
        self.meta_tail = json.dumps(meta)[1:]  # '"format": 1, ...}'
        self.entry = store.runs()[run_id]
        self.src = src

    def copy(self, dst: Path, env: str) -> Any:
        """The template as run `dst` of `env`; returns its manifest entry."""
        library = env.split("/", 1)[0]
        (dst / "data.zarr").mkdir(parents=True)
        for d in self.dirs:
            (dst / d).mkdir()
        for f in self.files:
            os.link(self.src / f, dst / f)
        head = json.dumps({"env_id": env, "library": library})[:-1]
        (dst / "meta.json").write_text(f"{head}, {self.meta_tail}")
        return dataclasses.replace(self.entry, env_id=env, library=library)


# -- measuring ---------------------------------------------------------------------------------
def _peak_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _peak_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """fn's result and its wall seconds, CPU seconds (this process) and peak memory."""
    _peak_reset()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, {
        "s": round(time.perf_counter() - t0, 4),
        "cpu_s": round(time.process_time() - c0, 4),
        "peak_gib": round(_peak_gib(), 3),
    }


def windows_per_cpu_s(sampler: Any, seconds: float) -> float:
    """Windows per CPU second with the chunk cache off (see the module docstring), after
    every run's arrays were opened once, as a long training run has."""
    for ref in sampler.streams:
        for column in ("obs", "actions", "rewards", "terminated", "truncated", "ref_actions"):
            sampler.readers[ref.run_id].column(ref.stream, column)  # opened once, kept
    sampler._cache.clear()
    sampler._cache_bytes, sampler._cache_limit = 0, 0
    rng = np.random.default_rng(0)
    n, c0 = 0, time.process_time()
    while time.process_time() - c0 < seconds:
        sampler.sample(rng)
        n += 1
    return n / (time.process_time() - c0)


def plan_envs(ids: list[str]) -> int:
    """The planner's jobs for `ids` x the pool (top 3), 250 envs per library."""
    from ldm.envs.library.registry import catalog_spaces
    from ldm.refgen.candidates import load_pool
    from ldm.refgen.config import RefGenConfig
    from ldm.refgen.plan import plan_library, summarise_jobs

    kinds = [(OBS, ACT), (OBS, SpaceSpec("continuous", (2,), low=(-1.0,) * 2, high=(1.0,) * 2))]

    def spaces(env_id: str) -> tuple[SpaceSpec, SpaceSpec]:
        if env_id.startswith("synthetic/"):  # not in the catalog: vector obs, either action kind
            return kinds[zlib.crc32(env_id.encode()) % 2]
        return catalog_spaces(env_id)

    cfg = RefGenConfig(envs=ids[:1], top_n=3)
    pool = load_pool()
    jobs = []
    for lib in range(0, len(ids), 250):
        jobs += plan_library(f"lib{lib}", ids[lib : lib + 250], pool, cfg, "store",
                             spaces=spaces).jobs  # fmt: skip
    summarise_jobs(jobs)
    return len(jobs)


def synthetic_result(store: Store, ids: list[str]) -> Any:
    from ldm.eval import EvalConfig
    from ldm.eval.results import EnvResult, EvalResult
    from ldm.eval.scores import summarise

    rng = np.random.default_rng(0)
    envs = [
        EnvResult(e, "ok", returns=((1.0,) * 10, (2.0,) * 10), episodes=20, seeds=(1, 2),
                  mean_return=1.5, normalised_score=float(rng.uniform(0, 150)),
                  reference_run=f"{e.replace('/', '__')}-r0", first10=0.0, last10=1.0)
        for e in ids
    ]  # fmt: skip
    return EvalResult("ldm", str(store.path), EvalConfig(), tuple(envs), summarise(envs))


def one_size(runs: int, quick: bool, made: list[_Copier] | None = None) -> dict[str, Any]:
    from ldm.data import WindowSampler
    from ldm.data.verify import store_stats, verify_store
    from ldm.eval.evaluate import prepare
    from ldm.eval.report import write_report

    out: dict[str, Any] = {"runs": runs, "envs": n_envs(runs)}

    def measure_into(name: str, fn: Callable[[], Any]) -> Any:
        result, out[name] = measure(fn)
        print(json.dumps({"runs": runs, name: out[name]}), file=sys.stderr, flush=True)
        return result

    with tempfile.TemporaryDirectory(dir=os.environ.get("SCALE_TMP")) as d:
        path = Path(d) / "store"
        out["build_s"] = round(build(path, runs, made), 2)
        measure_into("open", lambda: Store(path, create=False).runs())
        store = Store(path, create=False)
        measure_into("stats", lambda: store_stats(store))
        bad = measure_into("verify", lambda: verify_store(store))
        assert not bad, bad
        sampler = measure_into("sampler_startup", lambda: WindowSampler(store, WINDOW))
        out["windows_per_s"] = round(windows_per_cpu_s(sampler, 0.3 if quick else 5), 1)
        del sampler
        ids = env_ids(n_envs(runs))
        measure_into("planner", lambda: plan_envs(ids))
        eval_ids = [e for e in ids if not e.startswith("synthetic/")][:1000]
        measure_into("eval_startup", lambda: prepare(store, eval_ids, None))
        result = synthetic_result(store, eval_ids)
        measure_into("report", lambda: write_report(result, Path(d) / "report"))
        out["eval_envs"] = len(eval_ids)
    return out


SIZES = (100, 1000, 10_000)
#: `--quick`: 9x apart, as the full run's 100x, in under a minute on the loaded 2-core VM
QUICK_SIZES = (6, 18, 54)
FIGURES = ("open", "stats", "verify", "sampler_startup", "planner", "eval_startup", "report")
STARTUP = ("open", "sampler_startup", "eval_startup")


def exponent(xs: list[int], ys: list[float]) -> float:
    """Slope of log(time) against log(N): 1 is linear growth, 2 quadratic."""
    return float(np.polyfit(np.log(xs), np.log(np.maximum(ys, 1e-4)), 1)[0])


def _warm() -> None:
    """What every size imports and caches, loaded before the first size is timed (`--quick`
    times its sizes in one process)."""
    import matplotlib.pyplot  # noqa: F401  (the report's)

    from ldm.data import WindowSampler  # noqa: F401
    from ldm.eval.evaluate import prepare  # noqa: F401
    from ldm.eval.report import write_report  # noqa: F401
    from ldm.refgen.candidates import load_pool

    env_ids(1)
    load_pool()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--size":  # one size, in its own process
        print(json.dumps(one_size(int(sys.argv[2]), "--quick" in sys.argv)))
        return
    a = args(__doc__)
    sizes = QUICK_SIZES if a.quick else SIZES
    rows = []
    scratch = tempfile.TemporaryDirectory(dir=os.environ.get("SCALE_TMP"))
    if a.quick:  # one process, one set of templates: three interpreters' imports and
        _warm()  # template runs were most of a quick run
        made = templates(Path(scratch.name) / "templates")
    for n in sizes:
        if a.quick:
            rows.append(one_size(n, quick=True, made=made))
        else:
            cmd = [sys.executable, __file__, "--size", str(n)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                raise SystemExit(f"size {n} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    scratch.cleanup()
    exps = {f: round(exponent(sizes, [r[f]["cpu_s"] for r in rows]), 2) for f in FIGURES}
    last = rows[-1]
    report(
        {
            "sampler_flatness": round(rows[-1]["windows_per_s"] / rows[0]["windows_per_s"], 3),
            "growth_exponent_max": max(exps.values()),
            "growth_exponents": exps,
            "startup_s_max": max(last[f]["s"] for f in STARTUP),
            "peak_gib_max": max(last[f]["peak_gib"] for f in FIGURES),
            "sizes": rows,
        }
    )


if __name__ == "__main__":
    main()
