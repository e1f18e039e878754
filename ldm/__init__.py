"""ldm: Large Decision Models — one transformer policy trained offline on many RL environments.

The package is a pipeline of parts (see docs/architecture.md); importing `ldm` itself is
cheap and pulls in no torch.
"""

__version__ = "0.1.0"
