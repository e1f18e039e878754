"""The container backend: a library's envs run and pass check_env inside an image built here.

Slow on a fresh machine: the base image is made from Debian packages with debootstrap and the
library image installs its requirements (both cached by content afterwards). The test starts
dockerd itself when no engine answers, and stops what it started.
"""

import shutil

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.docker]


@pytest.fixture(scope="module")
def engine():
    from ldm.envs.transport import docker
    from ldm.errors import EnvError

    if not shutil.which("docker") or not shutil.which("dockerd"):
        pytest.skip("no Docker engine on this machine (apt-get install docker.io)")
    try:
        started = docker.ensure_engine()
    except EnvError as e:
        pytest.skip(f"no Docker engine can run here: {e}")
    yield
    if started is not None:
        started.terminate()
        started.wait(timeout=60)


def test_image_tag_follows_the_spec_content(tmp_path, monkeypatch):
    from dataclasses import replace

    from ldm.envs.library.catalog import get_library
    from ldm.envs.transport import docker

    spec = get_library("classic-control")
    tag, deps = docker.image_tag(spec), docker.deps_tag(spec)
    assert tag == docker.image_tag(spec) and tag.startswith("ldm-env-classic-control:")
    more = replace(spec, requirements=[*spec.requirements, "six"])
    assert docker.image_tag(more) != tag and docker.deps_tag(more) != deps
    # a change of the worker's code makes a new image on the same dependency image
    worker = tmp_path / "worker"
    worker.mkdir()
    for name in docker.WORKER_FILES:
        (worker / name).write_bytes((docker.WORKER_SCRIPT.parent / name).read_bytes())
    (worker / docker.WORKER_FILES[0]).write_text("# changed\n", encoding="utf-8")
    monkeypatch.setattr(docker, "WORKER_SCRIPT", worker / docker.WORKER_SCRIPT.name)
    assert docker.image_tag(spec) != tag and docker.deps_tag(spec) == deps
    text = docker.deps_dockerfile(spec, "ldm-base:bookworm")
    assert text.startswith("FROM ldm-base:bookworm") and "gymnasium[classic-control]==1.4.0" in text
    layer = docker.dockerfile(spec, deps)
    assert layer.startswith(f"FROM {deps}\nCOPY worker/ /ldm/") and "pip" not in layer


def test_cartpole_passes_check_in_a_container(engine):
    from ldm.envs.library.check import check

    result = check("classic-control/CartPole-v1", backend="docker")
    assert result.ok, result.problems


def test_container_has_no_network(engine):
    import ldm.envs as E
    from ldm.envs.library.catalog import get_library
    from ldm.envs.transport.backends import connect

    conn = connect("docker", get_library("classic-control"), "probe")
    try:
        argv = conn.proc.args
        assert (
            "--network" in argv
            and argv[argv.index("--network") + 1] == "none"
            and "--read-only" in argv
        )
    finally:
        conn.close()
    venv = E.make_vec("classic-control/CartPole-v1", 2, backend="docker", workers=1)
    try:
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (2, 4)
    finally:
        venv.close()
