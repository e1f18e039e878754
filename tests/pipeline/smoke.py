"""What the smoke tests (suite, wide) share: a tiny LDM trained on a store while every env
whose windows the training loop consumed is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldm.data import WindowLoader
from ldm.envs import env_spaces
from ldm.train import TrainConfig, train


def train_seeing_envs(
    monkeypatch: pytest.MonkeyPatch, store_dir: str, out: Path, steps: int
) -> tuple[Path, set[str], set[tuple[str, str]]]:
    """Train ldm-tiny for `steps` env-balanced steps on `store_dir` into `out`; returns the
    final checkpoint, the envs of every window consumed and their (obs, action) kinds."""
    seen: set[str] = set()
    real_next = WindowLoader.__next__

    def recording_next(self):
        batch = real_next(self)
        seen.update(self.env_ids[i] for i in batch.env_index.tolist())
        return batch

    monkeypatch.setattr(WindowLoader, "__next__", recording_next)
    final = train(
        TrainConfig(store=store_dir, out=str(out), preset="ldm-tiny",
                    model={"context": 32}, window=32, steps=steps, batch_size=16, micro_batch=16,
                    weighting="env", checkpoint_every=steps, val_every=0, num_workers=0),
        progress=False,
    )  # fmt: skip
    kinds = {(env_spaces(e)[0].kind, env_spaces(e)[1].kind) for e in seen}
    return final, seen, kinds
