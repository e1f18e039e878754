"""The import order of docs/architecture.md: the light parts never pull in torch."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["ldm.envs", "ldm.data", "ldm.spaces", "ldm.tokenizer", "ldm.refgen", "ldm.cli"]
)
def test_light_modules_import_no_torch(module):
    code = (
        f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {module} imported {out.stdout.strip()}"
