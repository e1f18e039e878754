"""ldm/envs/library/venvs.py: interpreter choice, venv names, atomic builds with git sources."""

import hashlib
import json
import subprocess

import pytest

from ldm.envs.library.catalog import GitSource, LibrarySpec
from ldm.envs.library.sources import MIRROR_ENV
from ldm.envs.library.venvs import ensure_venv, find_python, venv_dir, venv_record
from ldm.errors import EnvError


def test_find_python_takes_the_newest_patch_of_exactly_that_version(tmp_path, monkeypatch):
    for version in ("3.6.9", "3.6.15", "3.10.2", "3.60.1"):
        minor = ".".join(version.split(".")[:2])
        exe = tmp_path / "versions" / version / "bin" / f"python{minor}"
        exe.parent.mkdir(parents=True)
        exe.write_text("")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_python("3.6") == str(tmp_path / "versions/3.6.15/bin/python3.6")
    assert find_python("3.1") is None  # not 3.10
    assert find_python("3.9") is None


def test_venv_names_of_plain_specs_do_not_change_new_fields_do():
    plain = LibrarySpec(name="x", domain="d", requirements=["a==1"], python="3.10", api="gym")
    old_key = json.dumps([["a==1"], "3.10", "gym"], sort_keys=True)  # before the new fields
    assert plain.env_hash == hashlib.sha256(old_key.encode()).hexdigest()[:12]
    pip = LibrarySpec(name="x", domain="d", requirements=["a==1"], python="3.10", api="gym",
                      installer="pip")  # fmt: skip
    assert pip.env_hash != plain.env_hash


def test_spec_fields_are_validated():
    with pytest.raises(EnvError, match="installer.*'conda'"):
        LibrarySpec(name="x", domain="d", installer="conda")


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    for repo, pkg in (("thing-path", "thing_path"), ("thing-pkg", "thing_pkg")):
        (tmp_path / "mirror" / repo / pkg).mkdir(parents=True)
        (tmp_path / "mirror" / repo / pkg / "__init__.py").write_text("VALUE = 7\n")
    (tmp_path / "mirror" / "thing-pkg" / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='thing_pkg', packages=['thing_pkg'])\n"
    )
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    monkeypatch.setenv("LDM_HOME", str(tmp_path / "home"))
    return tmp_path / "mirror"


def git_spec(repo, install):
    return LibrarySpec(
        name=repo,
        domain="test",
        requirements=["gymnasium==1.4.0", "numpy"],
        git=GitSource(url=f"https://example.org/{repo}", commit="0" * 40, install=install),
    )


@pytest.mark.parametrize("repo,install", [("thing-path", "path"), ("thing-pkg", "package")])
def test_git_source_from_the_mirror_is_importable_after_the_rename(mirror, repo, install):
    spec = git_spec(repo, install)
    python = ensure_venv(spec)
    module = repo.replace("-", "_")
    out = subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.VALUE)"],
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "7", out.stderr
    record = venv_record(spec)
    assert record["source"] == f"mirror:{mirror / repo}"
    assert record["installer"] == "uv" and record["python_version"].count(".") == 2
    assert record["build_seconds"] > 0
    envs = venv_dir(spec).parent
    assert [p.name for p in envs.iterdir() if ".build-" in p.name] == []


def test_failed_build_leaves_no_venv_and_names_the_spec(mirror):
    spec = LibrarySpec(name="broken", domain="t", requirements=["no-such-package-ldm-zz==9.9"])
    with pytest.raises(EnvError, match="could not install its requirements for library 'broken'"):
        ensure_venv(spec)
    assert not venv_dir(spec).exists()
    assert [p.name for p in venv_dir(spec).parent.iterdir() if not p.name.endswith(".lock")] == []
    assert venv_record(spec) is None
