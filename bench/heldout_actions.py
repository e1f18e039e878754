"""How far off a trained LDM's continuous actions are on held-out reference windows.

The held-out accuracy of training's validation counts a step right only when every action dim
lands in the reference's exact bin (1 of 1024 over the action range), so continuous-action envs
read 0-8% there whatever the policy does. This measures the distance instead, per env with
continuous actions, on the same held-out streams (the last sub-env of each run) and windows
drawn as training's validation draws them:

- accuracy: share of steps with every dim in the exact bin (training's `val/accuracy`);
- mae: mean |predicted - reference| action in the env's own units (bin centres, argmax);
- mae_range: the same as a share of each dim's range (high - low);
- within_1 / within_3: share of (step, dim) predictions at most 1 / 3 bins from the reference;
- median_mae_range / mean_mae_range: `mae_range` of the median / the mean of the predicted
  distribution over bins instead of its argmax (what a different decoding would give);
- at_bound: share of reference actions in the first or last bin (saturated actions);
- prev_mae_range: the error of repeating the previous action the window holds (the action
  taken, the model's own input): a copy-the-input baseline to set `mae_range` against.

`--store S --model M` measures a trained model; `--quick` alone measures an untrained tiny
model on a synthetic store (plumbing only). Last line: one JSON object, env -> the keys above.
"""

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, heldout_batches, heldout_sampler, report  # noqa: E402
from data import ACT, VEC, record  # noqa: E402

from ldm.data import Store  # noqa: E402
from ldm.model import LDMPolicy, preset  # noqa: E402
from ldm.spaces import N_BINS  # noqa: E402
from ldm.tokenizer import DONE_START, decode_actions  # noqa: E402


def env_action_errors(
    model: LDMPolicy, store: Store, env: str, windows: int, batch: int, seed: int
) -> dict | None:
    """The keys of the module docstring for one env (None: not continuous or nothing held out)."""
    val = heldout_sampler(model, store, env)
    if val is None:  # single-stream runs only: no held-out stream
        return None
    spec = val.readers[val.streams[0].run_id].act_spec
    if spec.kind != "continuous":
        return None
    D = spec.flat_dim
    low, high = (np.asarray(b, np.float64).reshape(-1) for b in (spec.low, spec.high))
    span = np.where(np.isfinite(high - low), high - low, np.nan)  # mu-law dims: no range
    decoded, ref_bins, prev_bins = [], [], []
    with torch.no_grad():
        for b in heldout_batches(val, windows, batch, seed):
            h = model.hidden_states(b, use_cache=False).last_hidden_state  # (B, T, H)
            probs = model.masked_logits(h, b.act_n, dims=D).softmax(-1)  # (B, T, D, 1024)
            mask = b.loss_mask.bool()
            # argmax (what acting does), the distribution's median and its mean, in bins
            median = (probs.cumsum(-1) >= 0.5).float().argmax(-1)
            mean = (probs * torch.arange(N_BINS, dtype=probs.dtype)).sum(-1).round().long()
            decoded.append(np.stack([x[mask].numpy() for x in (probs.argmax(-1), median, mean)]))
            # the token at t carries a_{t-1}; its first step in a window has none (masked below)
            prev_ok = mask & (b.prev_done != DONE_START)
            ref_bins.append(b.targets[..., :D][mask].numpy())
            prev_bins.append(
                np.where(prev_ok[mask].numpy()[:, None], b.prev_actions[..., :D][mask].numpy(), -1)
            )
    ref, prev = (np.concatenate(x).astype(np.int64) for x in (ref_bins, prev_bins))
    pred, median, mean = np.concatenate(decoded, axis=1).astype(np.int64)  # (N, D) each

    def error(bins: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """|decoded bins - decoded reference| in the env's units, (N, D)."""
        a = decode_actions(spec, bins).reshape(-1, D)
        return np.abs(a - decode_actions(spec, ref[rows]).reshape(-1, D))

    err = error(pred)
    has_prev = prev[:, 0] >= 0
    return {
        "steps": int(len(ref)),
        "dims": D,
        "accuracy": float((pred == ref).all(1).mean()),
        "mae": float(err.mean()),
        "mae_range": float(np.nanmean(err / span)),
        "within_1": float((np.abs(pred - ref) <= 1).mean()),
        "within_3": float((np.abs(pred - ref) <= 3).mean()),
        "at_bound": float(((ref == 0) | (ref == N_BINS - 1)).mean()),
        "median_mae_range": float(np.nanmean(error(median) / span)),
        "mean_mae_range": float(np.nanmean(error(mean) / span)),
        "prev_mae_range": float(np.nanmean(error(prev[has_prev], has_prev) / span)),
    }


#: measure(model, store, env, windows, batch, seed) -> one env's keys (None: not measured)
Measure = Callable[[LDMPolicy, Store, str, int, int, int], dict | None]


def run_per_env(description: str, measure: Measure) -> None:
    """Parse the options below, `measure` every env of the store, report env -> its keys."""
    a = args(description, extra=_options)
    windows = 4 if a.quick else a.windows
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        if a.store:
            store, model = Store(a.store, create=False), LDMPolicy.from_pretrained(a.model)
        else:
            store = Store(Path(d) / "store")
            record(store, "bench/Vec-v0", VEC, ACT, 2000)
            torch.manual_seed(0)
            model = LDMPolicy(preset("ldm-tiny", context=64)).eval()
        envs = a.envs or sorted({e.env_id for e in store.runs(curated_only=True).values()})
        out = {}
        for env in envs:
            m = measure(model, store, env, windows, a.batch, a.seed)
            if m is not None:
                out[env] = m
                print(env, m, file=sys.stderr, flush=True)
    report({"windows_per_env": windows, "envs": out})


def _options(p) -> None:
    p.add_argument("--store", help="a trajectory store (default: a synthetic one)")
    p.add_argument("--model", help="a trained checkpoint directory (needed with --store)")
    p.add_argument("--envs", nargs="*", help="env ids (default: every curated env)")
    p.add_argument("--windows", type=int, default=32, help="held-out windows per env")
    p.add_argument("--batch", type=int, default=16, help="windows per forward pass")
    p.add_argument("--seed", type=int, default=10_000, help="the windows' draw")


if __name__ == "__main__":
    run_per_env(__doc__, env_action_errors)
