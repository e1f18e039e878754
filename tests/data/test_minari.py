"""Minari as users have it: datasets built by Minari's own DataCollector on a real gymnasium
env, in each of its storage formats, imported by ldm; and ldm's export read back by Minari."""

import gymnasium as gym
import numpy as np
import pytest

from ldm.data import Store
from ldm.data.minari_io import FORMATS, export_minari, import_minari
from ldm.errors import StoreError

minari = pytest.importorskip("minari")


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def _collect(dataset_id: str, data_format: str | None, episodes: int = 3):
    """A dataset exactly as a Minari user makes one: DataCollector around gymnasium's CartPole,
    random actions, `create_dataset` (data_format None = Minari's default)."""
    from minari import DataCollector

    kw = {} if data_format is None else {"data_format": data_format}
    env = DataCollector(gym.make("CartPole-v1"), **kw)
    env.action_space.seed(0)
    for i in range(episodes):
        env.reset(seed=i)
        while True:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                break
    ds = env.create_dataset(
        dataset_id, algorithm_name="random", ref_min_score=10.0, ref_max_score=500.0
    )
    env.close()
    return ds


@pytest.mark.parametrize("data_format", [None, "hdf5", "arrow"])
def test_import_a_dataset_built_by_minari(minari_root, tmp_path, data_format):
    ds = _collect(f"cartpole/random-{data_format or 'default'}-v0", data_format)
    used = ds.storage.FORMAT
    assert used == (data_format or "hdf5")  # Minari's default is HDF5
    want = list(ds.iterate_episodes())
    store = Store(tmp_path / "store")
    msg = import_minari(ds.spec.dataset_id, str(store.path), env_id="classic-control/CartPole-v1")
    assert "3 episodes imported" in msg
    runs = sorted(store.runs(curated_only=True), key=lambda r: int(r.rsplit("-", 1)[1]))
    assert len(runs) == 3
    for run_id, ep in zip(runs, want):
        r = store.open_run(run_id)
        n = len(ep.rewards)
        assert r.length(0) == n
        np.testing.assert_array_equal(r.read(0, "obs"), ep.observations[:n])
        np.testing.assert_array_equal(r.read(0, "actions"), ep.actions)
        np.testing.assert_array_equal(r.read(0, "ref_actions"), ep.actions)  # no reference: actions
        np.testing.assert_array_equal(r.read(0, "terminated"), ep.terminations)
        assert r.meta["first10"] == 10.0 and r.meta["last10"] == 500.0
        assert r.meta["targets_from_actions"] is True


@pytest.mark.parametrize("data_format", list(FORMATS))
def test_export_in_each_format_reads_back_in_minari(minari_root, tmp_path, data_format):
    src = _collect("cartpole/src-v0", "arrow", episodes=2)
    store = Store(tmp_path / "store")
    import_minari(src.spec.dataset_id, str(store.path), env_id="classic-control/CartPole-v1")
    out = f"ldm/cartpole/{data_format}-v0"
    assert f"({data_format})" in export_minari(
        str(store.path), "classic-control/CartPole-v1", out, data_format=data_format
    )
    back = minari.load_dataset(out)
    used = back.storage.FORMAT
    assert used == data_format
    a, b = list(src.iterate_episodes()), list(back.iterate_episodes())
    assert [len(e.rewards) for e in b] == [len(e.rewards) for e in a]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(y.actions, x.actions)
        np.testing.assert_array_equal(y.infos["reference_action"][:-1], x.actions)


def test_unknown_format_and_missing_dataset_are_clear(minari_root, tmp_path):
    with pytest.raises(StoreError, match=r"format 'zip' is unknown; choose one of \['hdf5'"):
        export_minari(str(tmp_path / "s"), "a/B-v0", "x/y-v0", data_format="zip")
    with pytest.raises(StoreError, match="no local Minari dataset 'nobody/nothing-v0'"):
        import_minari("nobody/nothing-v0", str(tmp_path / "s"))
