"""Playing an evaluation's envs on this machine: the `local` runner.

`play_local` gives every (env, rollout) a slot, builds the agent that acts for them (an
LDMPolicy's batched session, or the store's reference policies) and the clip recorder, and
runs the protocol; a Ray share (ldm/eval/cluster.py) plays its envs with it too. `Played` is
what it leaves: the envs' bookkeeping (their vector envs closed and dropped, so it travels
between processes), the cost and the clips.

Imports the protocol, the agents, the clip recorder and SB3 classes via ldm.refgen.candidates
(for the references); must not import ldm.eval.evaluate or ldm.eval.cluster (they import
this), torch beyond what loading a reference needs, ldm.train or ldm.pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ldm.data import Store
from ldm.eval.agents import PredictAgent, SessionAgent
from ldm.eval.config import EvalConfig
from ldm.eval.protocol import EnvRun, ProtocolStats, run_protocol
from ldm.eval.video import ClipResult, EpisodeRecorder

if TYPE_CHECKING:
    from ldm.eval.scores import Reference


class Played(NamedTuple):
    """What playing a plan's envs left: the runs' bookkeeping, the cost and the clips."""

    runs: list[EnvRun]
    stats: ProtocolStats
    clips: dict[str, ClipResult]


def play_local(
    policy: Any,
    runs: list[EnvRun],
    refs: dict[str, Reference | None],
    store: Store,
    cfg: EvalConfig,
    progress: bool = True,
    video_dir: str | Path | None = None,
    per_env: Callable[[str], Any] | None = None,
) -> Played:
    """Play `runs` by the protocol on this machine, every slot in one batch (the `local`
    runner; a Ray share plays its envs with it too). `per_env` (with policy None): env id ->
    the SB3-style policy that acts there instead of its reference (a baseline)."""
    slot = 0
    for r in runs:
        r.slots = list(range(slot, slot + cfg.rollouts))
        slot += cfg.rollouts
    agent: Any = None  # stays None where no env could start: nothing acts
    if per_env is not None:
        agent = PredictAgent(
            [per_env(r.env_id) for r in runs], [i for i, r in enumerate(runs) for _ in r.slots]
        )
    elif policy is None:
        agent = PredictAgent(
            [_load_reference(store, refs[r.env_id]) for r in runs],
            [i for i, r in enumerate(runs) for _ in r.slots],
        )
    elif runs:
        obs_specs = [r.obs_spec for r in runs for _ in r.slots]
        act_specs = [r.act_spec for r in runs for _ in r.slots]
        agent = SessionAgent(policy, obs_specs, act_specs, cfg)
    recorder = None
    if cfg.video and video_dir is not None:
        recorder = EpisodeRecorder(video_dir, fmt=cfg.video_format)
        for r in runs:
            r.render_mode = "rgb_array"
    stats = run_protocol(runs, agent, cfg, progress, recorder) if runs else ProtocolStats(0, 0)
    for r in runs:
        r.venv = None  # closed by the protocol; the bookkeeping travels without it
    return Played(runs, stats, recorder.write() if recorder is not None else {})


def _load_reference(store: Store, ref: Reference | None) -> Any:
    if ref is None:
        return None
    from ldm.refgen.candidates import algorithm_class

    return algorithm_class(ref.meta.algorithm).load(
        str(store.path / ref.meta.extra["policy_file"]), device="cpu"
    )
