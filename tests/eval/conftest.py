"""Fixtures of the evaluation's tests: random scores cached in a folder of this session."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _random_score_cache(tmp_path_factory):
    """Evaluations measure random scores (ldm/eval/random_scores.py): into this session's
    folder, not the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LDM_RANDOM_SCORES", str(tmp_path_factory.mktemp("random_scores")))
    yield
    mp.undo()
