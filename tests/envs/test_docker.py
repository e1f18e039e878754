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
    from ldm.envs import docker
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


def test_image_tag_follows_the_spec_content():
    from dataclasses import replace

    from ldm.envs.catalog import get_library
    from ldm.envs.docker import dockerfile, image_tag

    spec = get_library("classic-control")
    assert image_tag(spec) == image_tag(spec)
    assert image_tag(spec) != image_tag(replace(spec, requirements=[*spec.requirements, "six"]))
    text = dockerfile(spec, "ldm-base:bookworm")
    assert text.startswith("FROM ldm-base:bookworm") and "gymnasium[classic-control]==1.4.0" in text


def test_cartpole_passes_check_in_a_container(engine):
    from ldm.envs.check import check

    result = check("classic-control/CartPole-v1", backend="docker")
    assert result.ok, result.problems


def test_container_has_no_network(engine):
    import ldm.envs as E
    from ldm.envs.backends import connect
    from ldm.envs.catalog import get_library

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
