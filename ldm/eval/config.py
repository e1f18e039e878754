"""EvalConfig: the settings of the paper's evaluation protocol, documented and validated.

Every check that needs only the settings runs in `__post_init__`, so `ldm run --dry-run`
rejects what the evaluation would. Imports the hub's backend names and ldm.cluster's runner
names; must not import torch, ldm.model, ldm.train, the protocol's loop or the report
(results.json is read with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ldm.cluster import RUNNERS, Runner
from ldm.envs import BACKEND_NAMES, Backend
from ldm.errors import EvalError
from ldm.tokens import ActionDecoding

VideoFormat = Literal["mp4", "gif"]


@dataclass
class EvalConfig:
    """Settings of the evaluation protocol."""

    rollouts: int = 2
    """R: fresh rollouts per env (context emptied at the start of each)."""
    episodes: int = 10
    """E: episodes per rollout (context kept across them)."""
    deterministic: bool = True
    """Argmax under the action mask; False samples with `temperature`."""
    temperature: float = 1.0
    """Sampling temperature when not deterministic."""
    decoding: ActionDecoding = "median"
    """Deterministic continuous actions: the median of the predicted distribution over the
    bins (median; measured better: docs/benchmarks.md) or the most likely bin (argmax).
    Categorical actions always take the most likely one."""
    seed: int = 1000
    """Base seed; rollout r of an env is reset with a seed derived from (seed, env id, r)."""
    max_steps: int = 100_000
    """Guard: steps per slot after which its unfinished episodes are cut (reported)."""
    episode_limit_factor: float = 3.0
    """Per-episode step limit = this x the longest episode of the env's reference run (so a
    policy that stalls, e.g. never presses FIRE, cannot hold its slot for the env's own
    27,000-step truncation); episodes cut there count with their return so far and are
    reported per env as `cut_episodes`. 0 = no limit."""
    backend: Backend = "process"
    """Env backend (process, inprocess, ray, docker)."""
    retries: int = 1
    """Restarts of an env whose worker died before it is reported as failed."""
    runner: Runner = "local"
    """Where the envs are played: local (this machine, every slot in one batch) or ray (in
    shares over a Ray cluster's nodes, each share acting with its own copy of the model: the
    same results for the same seeds; ldm/eval/cluster.py)."""
    workers: int | None = None
    """Ray: shares the envs are split into, played at once; None = the cluster's CPUs."""
    envs_at_once: int = 0
    """Local: play at most this many envs at once, group after group (0: all together). Each
    env is a worker process; at the wide run's 150 envs, with the references playing beside
    the LDM, all together is ~300 processes. `ldm run` keeps each finished group, so a kill
    loses at most the group it was in (ldm/eval/groups.py)."""
    references: bool = True
    """`ldm run`: evaluate the store's reference policies by the same protocol, beside the
    LDM (a score counts where the reference itself scores ~100)."""
    unseen_seed: int | None = None
    """`ldm run`: evaluate the LDM once more by the same protocol with this base seed (one
    neither the references' training nor the first evaluation used), into OUT/eval-unseen,
    its scores beside the references' of the first evaluation (the quality bar, checked again
    on seeds the run never used). None: no such stage."""
    expert_scores: bool = True
    """Put the expert-normalised score, (R - random) / (expert - random), beside the paper's
    for every env with a published expert score (ldm/eval/experts.toml); random scores are
    measured by the protocol once per env and version, then cached (ldm/eval/random_scores.py)."""
    video: bool = False
    """Record a clip of each env's first episode (rollout 0) into the report (on in `ldm run`)."""
    video_format: VideoFormat = "mp4"
    """Clip format: mp4 (H.264, small) or gif."""

    def __post_init__(self) -> None:
        if self.rollouts < 1 or self.episodes < 1:
            raise EvalError("rollouts and episodes must be >= 1")
        if self.video_format not in get_args(VideoFormat):
            raise EvalError(f"video_format {self.video_format!r} is not mp4 or gif")
        if self.runner not in RUNNERS:
            raise EvalError(f"runner {self.runner!r} is not one of {RUNNERS}")
        if self.envs_at_once < 0:
            raise EvalError(
                f"envs_at_once must be >= 0 (0: all envs at once), got {self.envs_at_once}"
            )
        if self.workers is not None and self.workers < 1:
            raise EvalError(
                f"workers must be >= 1 (or unset: the cluster's CPUs), got {self.workers}"
            )
        if self.backend not in BACKEND_NAMES:
            raise EvalError(f"backend {self.backend!r} is not one of {BACKEND_NAMES}")
        if self.decoding not in get_args(ActionDecoding):
            raise EvalError(f"decoding {self.decoding!r} is not one of {get_args(ActionDecoding)}")
        if self.episode_limit_factor < 0:
            raise EvalError(f"episode_limit_factor must be >= 0, got {self.episode_limit_factor}")
        if self.unseen_seed is not None and self.unseen_seed == self.seed:
            raise EvalError(
                f"unseen_seed {self.unseen_seed} equals seed: the second evaluation must use "
                "seeds the first did not (choose another unseen_seed, e.g. seed + 4000)"
            )
