import numpy as np
import pytest

from ldm.data import Store
from ldm.spaces import SpaceSpec

VEC = SpaceSpec("continuous", (3,), low=(-5.0,) * 3, high=(5.0,) * 3)
DISC = SpaceSpec("discrete", (), "int64", n=4)
BOXA = SpaceSpec("continuous", (2,), low=(-1.0, -1.0), high=(1.0, 1.0))
IMG = SpaceSpec("image", (64, 64, 3), "uint8")
MD = SpaceSpec("multi_discrete", (2,), "int64", nvec=(3, 5))


def record(
    store,
    env_id,
    obs_spec,
    act_spec,
    steps=300,
    streams=2,
    seed=0,
    verdict="pass",
    relabel=True,
    chunk_steps=64,
):
    """Write one run of random data; episodes end every ~20 steps."""
    rng = np.random.default_rng(seed)
    w = store.create_run(
        env_id,
        env_id.split("/")[0],
        obs_spec,
        act_spec,
        streams,
        {"algorithm": "test"},
        chunk_steps=chunk_steps,
    )
    for t in range(steps):
        if obs_spec.kind == "image":
            obs = rng.integers(0, 255, (streams, 64, 64, 3), dtype=np.uint8)
        else:
            obs = rng.normal(size=(streams, *obs_spec.shape)).astype(np.float32)
        if act_spec.kind == "discrete":
            act = rng.integers(0, act_spec.n, streams)
        elif act_spec.kind == "multi_discrete":
            act = rng.integers(0, 3, (streams, 2))
        else:
            act = rng.uniform(-1, 1, (streams, *act_spec.shape)).astype(np.float32)
        done = np.full(streams, (t + 1) % 20 == 0)
        w.append(obs, act, rng.normal(size=streams) + t / 100, done, np.zeros(streams, bool))
    rid = w.commit()
    if relabel:
        reader = store.open_run(rid)
        for k in range(streams):
            store.write_reference_actions(rid, k, reader.read(k, "actions"))
    if verdict:
        store.update_meta(rid, {"curation": {"verdict": verdict}})
    return rid


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


def damage(store, run_id, column, how, chunk=0):
    """Damage one chunk of a committed run's column (`s<k>/<name>`) as the issue did:
    "flip" 16 bytes, "truncate" it to a third, or "delete" it."""
    path = store.path / "runs" / run_id / "data.zarr" / column / "c" / str(chunk)
    if path.is_dir():  # an (n, ...) column: the chunk's key has one 0 per other dimension
        path = next(p for p in path.rglob("*") if p.is_file())
    data = bytearray(path.read_bytes())
    if how == "flip":
        at = len(data) // 2
        data[at : at + 16] = bytes(b ^ 0xFF for b in data[at : at + 16])
        path.write_bytes(bytes(data))
    elif how == "truncate":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:
        path.unlink()
    return path


def damaged_store(store):
    """One good run and the issue's three damaged ones (one env each; one chunk per column,
    so that every window of a damaged run holds its damaged chunk): (good id, {bad id: column})."""
    good = record(store, "good/Vec-v0", VEC, DISC, steps=200, streams=2, seed=0)
    bad = {}
    for i, (how, column) in enumerate(
        [("flip", "s0/obs"), ("truncate", "s0/rewards"), ("delete", "s0/actions")]
    ):
        rid = record(
            store, f"bad{i}/Vec-v0", VEC, DISC, steps=200, streams=1, seed=i + 1, chunk_steps=256
        )
        damage(store, rid, column, how, chunk=0)
        bad[rid] = column
    return good, bad
