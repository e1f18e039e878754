"""How much of its 128-step window a trained LDM uses: held-out loss by position in the window.

Training's loss averages over every position of a window; a token early in the window has
little history, a late one a long one. This splits the held-out loss and step accuracy of the
same windows (the held-out streams, drawn as in `heldout_actions.py`) by the number of earlier
steps the position sees: 0 (the first step: no previous action either), 1-7, 8-31 and 32+. A
loss that stops falling after a few steps says the model uses little history there, which no
longer window would change. A forward-only stand-in for a window-length ablation.

Options as `heldout_actions.py`. Last line: one JSON object, env -> {bucket: {loss, accuracy}}.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import heldout_batches, heldout_sampler  # noqa: E402
from heldout_actions import run_per_env  # noqa: E402

from ldm.data import Store  # noqa: E402
from ldm.errors import ModelError  # noqa: E402
from ldm.model import LDMPolicy  # noqa: E402

#: buckets of history length (earlier steps in the window), [start, stop)
BUCKETS = {"0": (0, 1), "1-7": (1, 8), "8-31": (8, 32), "32+": (32, 1 << 30)}


def env_context_use(
    model: LDMPolicy, store: Store, env: str, windows: int, batch: int, seed: int
) -> dict | None:
    """Held-out loss and accuracy of one env per bucket (None: nothing held out)."""
    val = heldout_sampler(model, store, env)
    if val is None:  # single-stream runs only: no held-out stream
        return None
    sums: dict[str, list[float]] = {k: [0.0, 0.0, 0.0] for k in BUCKETS}  # loss, acc, weight
    with torch.no_grad():
        for b in heldout_batches(val, windows, batch, seed):
            T = b.loss_mask.shape[1]
            # windows are left-padded: a position's history starts at the window's first real step
            first = b.loss_mask.float().argmax(1, keepdim=True)  # (B, 1)
            seen = torch.arange(T)[None, :] - first  # (B, T) earlier steps in the window
            for name, (lo, hi) in BUCKETS.items():
                mask = b.loss_mask.bool() & (seen >= lo) & (seen < hi)
                try:
                    (m,) = model.per_env_metrics(b._replace(loss_mask=mask)).values()
                except ModelError:  # no position of this bucket in the batch
                    continue
                n = float(mask.sum())
                sums[name] = [
                    sums[name][0] + m["loss"] * n,
                    sums[name][1] + m["accuracy"] * n,
                    sums[name][2] + n,
                ]
    return {
        k: {"loss": loss / n, "accuracy": acc / n, "steps": int(n)}
        for k, (loss, acc, n) in sums.items()
        if n
    }


if __name__ == "__main__":
    run_per_env(__doc__, env_context_use)
