"""Minari as users have it: datasets built by Minari's own DataCollector on a real gymnasium
env, in each of its storage formats, imported by ldm; and ldm's export read back by Minari."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

from ldm.cli import main
from ldm.data import Store
from ldm.data.minari_io import FORMATS, export_minari, import_minari
from ldm.envs.library.registry import catalog_spaces
from ldm.errors import StoreError
from tests.data.conftest import VEC, record

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
        assert r.meta.first10 == 10.0 and r.meta.last10 == 500.0
        assert r.meta.extra["targets_from_actions"] is True


@pytest.mark.parametrize("data_format", list(FORMATS))
def test_export_in_each_format_reads_back_in_minari(minari_root, tmp_path, data_format):
    src = _collect("cartpole/src-v0", "arrow", episodes=2)
    store = Store(tmp_path / "store")
    import_minari(src.spec.dataset_id, str(store.path), env_id="classic-control/CartPole-v1")
    out = f"ldm/cartpole/{data_format}-v0"
    done = export_minari(str(store.path), "classic-control/CartPole-v1", out, data_format)
    assert done.data_format == data_format and done.episodes == 2
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


def test_export_all_or_chosen_runs_with_an_env_spec_minari_recovers(minari_root, tmp_path, capsys):
    """Through the CLI: every run of the env by default (not only curated), what was exported
    said, no Minari warning; the dataset's env spec remakes the isolated env."""
    cartpole = "classic-control/CartPole-v1"
    obs_spec, act_spec = catalog_spaces(cartpole)
    store = Store(tmp_path / "store")
    passed = record(store, cartpole, obs_spec, act_spec, steps=60, verdict="pass", seed=1)
    failed = record(store, cartpole, obs_spec, act_spec, steps=40, verdict="fail", seed=2)
    record(store, "other/Thing-v0", VEC, act_spec, steps=20)
    argv = ["data", "export-minari", str(store.path), "ldm/cartpole/all-v0", "--env", cartpole]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Minari's five "is set to None" warnings among them
        assert main(argv + ["--author", "A. User"]) == 0
    said = capsys.readouterr().out
    # 2 streams x (60 + 40) steps, an episode every 20 steps: 10 episodes
    assert "ldm/cartpole/all-v0: 10 episodes (200 steps) of classic-control/CartPole-v1" in said
    assert "from 2 runs (1 curated)" in said and passed in said and failed in said
    assert "env spec: classic-control/CartPole-v1" in said
    assert "not named: author_email, code_permalink" in said
    ds = minari.load_dataset("ldm/cartpole/all-v0")
    assert ds.spec.env_spec.id == cartpole and ds.storage.metadata["author"] == {"A. User"}
    env = ds.recover_environment()
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4,) and env.unwrapped.env_id == cartpole
    finally:
        env.close()
    # a subset: the curated runs, or runs named (the env then follows from them)
    curated = export_minari(str(store.path), cartpole, "ldm/cartpole/cur-v0", curated_only=True)
    assert curated.runs == (passed,) and curated.curated == 1
    named = export_minari(str(store.path), None, "ldm/cartpole/one-v0", run_ids=(failed,))
    assert named.runs == (failed,) and named.env_id == cartpole and named.curated == 0
    with pytest.raises(StoreError, match="one env; the runs are of 2 envs"):
        export_minari(str(store.path), None, "ldm/x/y-v0")
    with pytest.raises(StoreError, match="exists already"):
        export_minari(str(store.path), cartpole, "ldm/cartpole/cur-v0")
