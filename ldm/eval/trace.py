"""Episode traces: what an env that draws no frames did in an episode, as a picture.

Owns `EpisodeTrace` (sub-env 0's observations, actions and rewards of one episode, thinned
to a bounded number of points like a clip's frames) and `plot_trace`, which writes it as a
PNG of three panels: observation dimensions, action dimensions and the cumulative return
over the episode's steps. The clip recorder (ldm/eval/video.py) keeps one for an env whose
worker cannot render (motors, markets, buildings, patients, networks), so the report shows
how the policy acted there too.

Imports: numpy, matplotlib (lazily, Agg); no torch, no model, no env.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAX_LINES = 8
"""Dimensions drawn per panel (the ones that vary most)."""


def _flat(x: Any) -> np.ndarray | None:
    """A step's observation or action as a float vector; None for dicts and images."""
    if isinstance(x, dict):
        return None
    try:
        a = np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return a if a.size <= 1024 else None


@dataclass
class EpisodeTrace:
    """Sub-env 0's steps of one episode, every `every`-th kept (bounded by `max_points`)."""

    max_points: int = 500
    steps: list[int] = field(default_factory=list)
    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    every: int = 1
    t: int = 0
    total: float = 0.0

    def add(self, obs: Any, action: Any, reward: float) -> None:
        """One step: the observation after it, the action taken and the reward."""
        self.t += 1
        self.total += float(reward)
        if self.t % self.every:
            return
        o, a = _flat(obs), _flat(action)
        if o is not None and self.obs and o.shape != self.obs[-1].shape:
            o = None
        self.steps.append(self.t)
        self.obs.append(o if o is not None else np.zeros(0))
        self.actions.append(a if a is not None else np.zeros(0))
        self.returns.append(self.total)
        if len(self.steps) >= self.max_points:  # half the points, every other step from now
            for name in ("steps", "obs", "actions", "returns"):
                setattr(self, name, getattr(self, name)[::2])
            self.every *= 2


def _panel(ax: Any, steps: list[int], rows: list[np.ndarray], label: str) -> None:
    width = min(len(r) for r in rows)
    if width == 0:
        ax.text(0.5, 0.5, f"{label}: not a vector", ha="center", va="center")
        ax.set_axis_off()
        return
    m = np.stack([r[:width] for r in rows])  # (points, dims)
    dims = np.argsort(-m.std(axis=0), kind="stable")[:MAX_LINES]
    for d in sorted(dims):
        ax.plot(steps, m[:, d], lw=1, label=f"{label}[{d}]")
    ax.set_ylabel(label + ("" if width <= MAX_LINES else f" ({MAX_LINES} of {width})"))
    ax.legend(fontsize=6, ncol=4, loc="upper right")


def plot_trace(trace: EpisodeTrace, path: str | Path, title: str) -> Path:
    """Write the trace as a PNG (temp name, then renamed); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(3, 1, figsize=(6, 5.5), sharex=True)
    _panel(axes[0], trace.steps, trace.obs, "obs")
    _panel(axes[1], trace.steps, trace.actions, "action")
    axes[2].plot(trace.steps, trace.returns, color="k", lw=1.5)
    axes[2].set_ylabel("return so far")
    axes[2].set_xlabel("step of the episode")
    axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)
    return path
