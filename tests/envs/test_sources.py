"""ldm/envs/library/sources.py: a git-only library's tree comes from a local mirror (dir or archive)."""

import os
import shutil
import stat

import pytest

from ldm.envs.library.catalog import GitSource
from ldm.envs.library.sources import MIRROR_ENV, fetch, find_in_mirror
from ldm.errors import EnvError

GIT = GitSource(url="https://github.com/someone/Gym-Thing.git", commit="abcdef1234567890" * 2)


def make_tree(root):
    (root / "gym_thing").mkdir(parents=True)
    (root / "gym_thing" / "__init__.py").write_text("VALUE = 1\n")
    (root / "setup.py").write_text("from setuptools import setup\nsetup(name='gym_thing')\n")
    return root


def test_repo_name_comes_from_the_url():
    assert GIT.repo == "Gym-Thing"


def test_plain_folder_is_found_case_insensitively_and_copied_writable(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    make_tree(mirror / "gym-thing")
    for p in [*(mirror / "gym-thing").rglob("*")]:  # mirrors are often read-only
        p.chmod(p.stat().st_mode & ~0o222)
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    dest = tmp_path / "venv" / "src" / "Gym-Thing"
    dest.parent.mkdir(parents=True)
    origin = fetch(GIT, dest, "thing")
    assert origin == f"mirror:{mirror / 'gym-thing'}"
    assert (dest / "gym_thing" / "__init__.py").read_text() == "VALUE = 1\n"
    assert os.stat(dest / "setup.py").st_mode & stat.S_IWUSR


def test_commit_named_archive_wins_over_plain_folder(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    make_tree(mirror / "Gym-Thing")
    tree = make_tree(tmp_path / "build" / "Gym-Thing-abcdef1")  # archives hold one top folder
    shutil.make_archive(str(mirror / "gym-thing-abcdef1"), "gztar", tree.parent, tree.name)
    assert find_in_mirror(GIT, [mirror]) == mirror / "gym-thing-abcdef1.tar.gz"
    monkeypatch.setenv(
        MIRROR_ENV, os.pathsep.join([str(tmp_path / "elsewhere-empty"), str(mirror)])
    )
    (tmp_path / "elsewhere-empty").mkdir()
    dest = tmp_path / "src"
    assert fetch(GIT, dest, "thing").endswith("gym-thing-abcdef1.tar.gz")
    assert sorted(p.name for p in dest.iterdir()) == ["gym_thing", "setup.py"]
    assert not (tmp_path / "src.unpack").exists()


def test_missing_entry_names_the_mirror_the_names_and_the_fix(tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "gym-thing.txt").write_text("not a tree")
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    with pytest.raises(EnvError, match=r"no entry for 'Gym-Thing'.*Gym-Thing-abcdef1.*unset"):
        fetch(GIT, tmp_path / "dest", "thing")
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "nope"))
    with pytest.raises(EnvError, match="not a directory"):
        fetch(GIT, tmp_path / "dest", "thing")


def test_git_table_is_validated():
    with pytest.raises(EnvError, match="commit"):
        GitSource(url="https://x/y", commit="")
    with pytest.raises(EnvError, match="install is 'editable'"):
        GitSource(url="https://x/y", commit="abc", install="editable")
