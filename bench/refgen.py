"""Reference generation: the cost of recording SB3 training into the store, and relabelling speed.

Keys: recording_overhead (time with recording / time without, same job; goal <= 1.10),
relabel_obs_per_s.
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402

from ldm.data import Store  # noqa: E402
from ldm.refgen.candidates import load_pool  # noqa: E402
from ldm.refgen.curate import relabel_run  # noqa: E402
from ldm.refgen.jobs import Job, run_job  # noqa: E402


def main() -> None:
    a = args(__doc__)
    budget = 8000 if a.quick else 40000
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
        run_id = out.run_id
        store = Store(d)
        t0 = time.perf_counter()
        n = relabel_run(store, run_id)
        relabel = n / (time.perf_counter() - t0)
    report(
        {
            "recording_overhead": round(min(times[True]) / min(times[False]), 3),
            "seconds_with_recording": round(min(times[True]), 2),
            "seconds_without": round(min(times[False]), 2),
            "transitions": budget,
            "relabel_obs_per_s": round(relabel),
        }
    )


if __name__ == "__main__":
    main()
