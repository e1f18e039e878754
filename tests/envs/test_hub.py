"""The hub's public names (ldm/envs/__init__.py): the backend names configs may choose."""

from typing import get_args

import pytest

from ldm.envs import BACKEND_NAMES, Backend
from ldm.envs.transport.backends import BACKENDS
from ldm.errors import EvalError, RefGenError
from ldm.eval.config import EvalConfig
from ldm.refgen import RefGenConfig


def test_the_backend_choices_are_the_connectors():
    """The Literal the configs and CLIs offer is exactly what `connect` can open."""
    assert set(get_args(Backend)) == set(BACKEND_NAMES) == set(BACKENDS)


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_configs_take_every_backend_and_name_an_unknown_one(backend):
    assert EvalConfig(backend=backend).backend == backend
    assert RefGenConfig(envs=["a/B-v0"], backend=backend).backend == backend
    with pytest.raises(EvalError, match=r"backend 'proc' is not one of \('process'"):
        EvalConfig(backend="proc")  # type: ignore[arg-type]
    with pytest.raises(RefGenError, match=r"backend 'proc' is not one of \('process'"):
        RefGenConfig(envs=["a/B-v0"], backend="proc")  # type: ignore[arg-type]
