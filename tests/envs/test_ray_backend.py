"""The `ray` env backend (ldm/envs/transport/ray_backend.py RayConnection) on a cluster started with
`ray start --head`: the same steps as the process backend, and no worker left at exit."""

import textwrap
import time

import numpy as np
import pytest

import ldm.envs

SCRIPT = """
import json
import numpy as np
import ray
import ldm.envs as e

v = e.make_vec("classic-control/CartPole-v1", 2, backend="ray")
obs, _ = v.reset(seed=[3, 4])
trace = [obs.tolist()]
for t in range(20):
    obs, rew, term, trunc, _ = v.step(np.array([t % 2, 1]))
    trace.append(obs.tolist())
print(json.dumps({"trace": trace, "cluster": ray.get_runtime_context().gcs_address}), flush=True)
# no close(): the at-exit hook must close the actors and their workers
"""


@pytest.mark.slow
def test_a_vector_env_steps_on_a_ray_cluster_like_the_process_backend(ray_head):
    out = ray_head.run_driver(textwrap.dedent(SCRIPT))
    local = ldm.envs.make_vec("classic-control/CartPole-v1", 2, backend="process")
    try:
        obs, _ = local.reset(seed=[3, 4])
        expected = [obs]
        for t in range(20):
            expected.append(local.step(np.array([t % 2, 1]))[0])
    finally:
        local.close()
    np.testing.assert_allclose(np.asarray(out["trace"]), np.stack(expected), rtol=1e-6)
    # the actors' workers ran with the head's TMPDIR: their scratch dirs are gone with them
    deadline = time.time() + 30
    while time.time() < deadline and list(ray_head.tmpdir.glob("ldm-worker-*")):
        time.sleep(0.5)
    assert list(ray_head.tmpdir.glob("ldm-worker-*")) == []
