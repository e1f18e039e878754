"""The job runner (ldm/refgen/runner.py) on a Ray cluster started with `ray start --head`."""

import json
import textwrap

import pytest

from ldm.data import Store


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
    assert run.meta["env_id"] == "classic-control/CartPole-v1"
    assert sum(run.length(s) for s in range(8)) >= 512
    manifest = json.loads((store_dir / "refgen" / "jobs.json").read_text())
    assert [e["status"] for e in manifest.values()] == ["done"]
