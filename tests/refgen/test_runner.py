"""The job runner (ldm/refgen/runner.py) on a Ray cluster started with `ray start --head`:
a job runs there, and a job whose worker is killed runs again and is stored once."""

import json
import subprocess
import sys
import textwrap

import pytest

from ldm.data import Store
from tests.procs import alive


@pytest.mark.slow
def test_a_reference_job_runs_on_a_ray_cluster(ray_head, tmp_path):
    store_dir = tmp_path / "store"
    code = textwrap.dedent(
        f"""
        import json
        import ray
        from ldm.refgen.candidates import load_pool
        from ldm.refgen.jobs import Job
        from ldm.refgen.runner import run_jobs

        cand = {{c.name: c for c in load_pool()}}["ppo-8env"]
        job = Job("train", "classic-control/CartPole-v1", "classic-control", cand,
                  512, 0, {str(store_dir)!r})
        results = run_jobs([job], runner="ray", workers=1, progress=False)
        nodes = [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]]
        print(json.dumps({{"results": {{k: r.to_dict() for k, r in results.items()}}, "nodes": nodes,
                          "cluster": ray.get_runtime_context().gcs_address}}))
        """
    )
    out = ray_head.run_driver(code)  # checks the job went to that head, not a new local Ray
    (result,) = out["results"].values()
    assert result["status"] == "done", result.get("error")
    run = Store(store_dir).open_run(result["run_id"])
    assert run.meta.env_id == "classic-control/CartPole-v1"
    assert sum(run.length(s) for s in range(8)) >= 512
    manifest = json.loads((store_dir / "refgen" / "jobs.json").read_text())
    assert [e["status"] for e in manifest.values()] == ["done"]


@pytest.mark.slow
@pytest.mark.long
def test_a_reference_job_whose_ray_worker_dies_runs_again_and_is_stored_once(ray_head, tmp_path):
    store_dir = tmp_path / "store"
    code = textwrap.dedent(
        f"""
        import json
        import ray
        from ldm.refgen.candidates import load_pool
        from ldm.refgen.jobs import Job
        from ldm.refgen.runner import run_jobs

        cand = {{c.name: c for c in load_pool()}}["ppo"]
        job = Job("train", "classic-control/CartPole-v1", "classic-control", cand,
                  4096, 0, {str(store_dir)!r})
        results = run_jobs([job], runner="ray", workers=1, retries=0, progress=False)
        print(json.dumps({{"results": {{k: r.to_dict() for k, r in results.items()}},
                          "cluster": ray.get_runtime_context().gcs_address}}))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ray_head.env(),
    )
    try:
        # killed while it records: its half-written run is pending in the store
        killed = ray_head.kill_task_worker("ray::_attempt", proc, settle=0.0, ready=lambda: (
            (store_dir / ".pending").is_dir() and any((store_dir / ".pending").iterdir())
        ))  # fmt: skip
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert not alive(killed)
    (result,) = json.loads(stdout.strip().splitlines()[-1])["results"].values()
    # retries=0: the runner itself gave the job one try; Ray ran it again on another worker
    assert result["status"] == "done", result.get("error")
    store = Store(store_dir)
    assert list(store.runs()) == [result["run_id"]] and store.pending() == []
    run = store.open_run(result["run_id"])
    assert run.meta.transitions >= 4096 and run.has_reference_actions()
