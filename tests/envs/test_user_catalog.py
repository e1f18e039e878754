"""User catalogs: $LDM_CATALOG_PATH / `ldm --catalog-dir` add spec directories that every
command reads; discover writes there, never into the built-in catalog."""

import json
import os

import pytest
import tomli_w

from ldm.cli import main, take_catalog_dirs
from ldm.envs.library.catalog import CATALOG_DIR, CATALOG_PATH_ENV, catalog_write_dir, load_catalog
from ldm.envs.library.registry import resolve_env_id
from ldm.errors import EnvError


@pytest.fixture
def user_dir(tmp_path, faulty_module, monkeypatch):
    """A user catalog holding one library (the test envs of conftest), in $LDM_CATALOG_PATH."""
    d = tmp_path / "my-catalog"
    d.mkdir()
    spec = {
        "name": "userlib",
        "domain": "test",
        "requirements": ["gymnasium==1.4.0", "numpy>=2"],  # the faulty library's cached venv
        "imports": ["faulty_envs"],
        "python_path": [str(faulty_module)],
        "include": ["Faulty-ok-v0"],
        "envs": ["Faulty-ok-v0"],
    }
    (d / "userlib.toml").write_text(tomli_w.dumps(spec))
    monkeypatch.setenv(CATALOG_PATH_ENV, str(d))
    load_catalog.cache_clear()
    yield d
    load_catalog.cache_clear()


def test_user_specs_are_read_before_the_built_in_ones(user_dir):
    catalog = load_catalog()
    assert catalog["userlib"].path == str(user_dir / "userlib.toml")
    assert "classic-control" in catalog  # the built-in catalog is still there
    spec, rid = resolve_env_id("userlib/Faulty-ok-v0")
    assert (spec.name, rid) == ("userlib", "Faulty-ok-v0")
    # a user spec of a built-in name overrides it
    (user_dir / "cc.toml").write_text(
        tomli_w.dumps({"name": "classic-control", "domain": "mine", "envs": ["CartPole-v1"]})
    )
    load_catalog.cache_clear()
    assert load_catalog()["classic-control"].domain == "mine"
    assert catalog_write_dir() == user_dir


def test_a_missing_user_directory_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(CATALOG_PATH_ENV, str(tmp_path / "nope"))
    load_catalog.cache_clear()
    try:
        with pytest.raises(EnvError, match=r"LDM_CATALOG_PATH names .*nope, which is not a dir"):
            load_catalog()
    finally:
        monkeypatch.delenv(CATALOG_PATH_ENV)
        load_catalog.cache_clear()


def test_the_flag_prepends_to_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv(CATALOG_PATH_ENV, "/already")
    rest = take_catalog_dirs(["envs", "list", "--catalog-dir", str(tmp_path), "--json"])
    assert rest == ["envs", "list", "--json"]
    assert os.environ[CATALOG_PATH_ENV] == os.pathsep.join([str(tmp_path), "/already"])
    load_catalog.cache_clear()


def test_list_check_setup_play_through_the_flag(user_dir, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(CATALOG_PATH_ENV)
    load_catalog.cache_clear()
    flag = ["--catalog-dir", str(user_dir)]
    assert main(["envs", "list", "--json", *flag]) == 0
    ids = [e["id"] for e in json.loads(capsys.readouterr().out)]
    assert "userlib/Faulty-ok-v0" in ids and "classic-control/CartPole-v1" in ids
    assert main(["envs", "setup", "userlib", *flag]) == 0
    assert main(["envs", "check", "userlib/Faulty-ok-v0", *flag]) == 0
    assert "PASS userlib/Faulty-ok-v0" in capsys.readouterr().out
    # eval's machinery (ldm play runs the protocol) in a user-catalogued env
    from ldm.model import LDMPolicy, preset

    ck = LDMPolicy(preset("ldm-tiny", context=32)).save_pretrained(tmp_path / "ck")
    assert main(["play", str(ck), "userlib/Faulty-ok-v0", "--episodes", "1", *flag]) == 0
    assert "episode 1: return 10" in capsys.readouterr().out  # Faulty-ok ends after 10 steps


@pytest.mark.slow
def test_discover_writes_into_the_user_directory(user_dir, capsys):
    builtin = sorted(p.name for p in CATALOG_DIR.iterdir())
    assert main(["envs", "discover", "userlib", "--timeout", "60", "--workers", "1"]) == 0
    spec = (user_dir / "userlib.toml").read_text()
    assert "Faulty-ok-v0" in spec and "discovery" in spec
    side = json.loads((user_dir / "userlib.spaces.json").read_text())
    assert side["Faulty-ok-v0"]["action"]["n"] == 2
    assert sorted(p.name for p in CATALOG_DIR.iterdir()) == builtin  # nothing written there


@pytest.mark.slow
def test_refgen_and_eval_through_the_flag(user_dir, monkeypatch, tmp_path):
    from ldm.data import Store
    from ldm.model import LDMPolicy, preset

    monkeypatch.delenv(CATALOG_PATH_ENV)
    load_catalog.cache_clear()
    flag = ["--catalog-dir", str(user_dir)]
    env_id = "userlib/Faulty-ok-v0"
    config = tmp_path / "refgen.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "refgen": {
                    "envs": [env_id],
                    "candidates": ["ppo-8env"],
                    "top_n": 1,
                    "seeds": 1,
                    "train_budget": 1024,
                    "workers": 1,
                }
            }
        )
    )
    store = tmp_path / "store"
    # the job runs in its own process: it must see the user catalog too
    assert main(["refgen", "all", "--config", str(config), "--store", str(store), *flag]) == 0
    runs = Store(store, create=False).runs()
    assert [e.env_id for e in runs.values()] == [env_id]
    run = Store(store, create=False).open_run(next(iter(runs)))
    assert run.length(0) >= 1024 // 8 and run.meta.relabelled
    ck = LDMPolicy(preset("ldm-tiny", context=32)).save_pretrained(tmp_path / "ck")
    out = tmp_path / "eval"
    argv = ["eval", str(ck), "--store", str(store), "--envs", env_id, "--out", str(out)]
    assert main([*argv, "--rollouts", "1", "--episodes", "2", *flag]) == 0
    (e,) = json.loads((out / "results.json").read_text())["envs"]
    assert (e["env_id"], e["status"], e["returns"]) == (env_id, "ok", [[10.0, 10.0]])
