"""Rollout clips: frames of the recorded episode(s) of each env, written as a short MP4 or GIF.

`EpisodeRecorder` rides along the evaluation protocol (ldm/eval/protocol.py calls `started`
after an env's vector env is (re)opened and `stepped` after each of its steps): it records
sub-env 0 (rollout 0) of every env for its first `episodes` episodes and nothing else. Frames
are rendered in the env's worker (`render_mode="rgb_array"`, the worker's `render` command),
thinned there to `max_side` pixels a side, and thinned in time here: at `max_frames` every
other frame is dropped and only every 2nd (4th, ...) step is rendered from then on, so a long
episode costs a bounded number of renders and bytes. A clip over `max_bytes` is re-encoded
with half the frames. An env that cannot render gets a note saying why and, in place of the
clip, a plot of the same episode's observations, actions and return (ldm/eval/trace.py).

Imports: numpy, imageio (+ imageio-ffmpeg for MP4) lazily; no torch, no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ldm.errors import EvalError
from ldm.eval.results import EnvResult
from ldm.eval.trace import EpisodeTrace, plot_trace

FORMATS = ("mp4", "gif")
FPS = 30


@dataclass(frozen=True)
class ClipResult:
    """One env's clip (path), or why there is none (note) and then the path of its episode's
    plot (a .png) where its steps were traced."""

    env_id: str
    path: str | None
    note: str | None = None
    frames: int = 0
    episodes: int = 0
    speed: int = 1
    """Steps per frame (1 = every step shown)."""


@dataclass
class _Clip:
    frames: list[np.ndarray] = field(default_factory=list)
    every: int = 1
    t: int = 0
    episodes: int = 0
    note: str | None = None
    finished: bool = False
    trace: EpisodeTrace | None = None
    """Set when the env draws no frames: its steps are traced instead."""


def clip_name(env_id: str, suffix: str = "") -> str:
    """A file name for an env's clip (`lib/Env-v0` -> `lib__Env-v0`)."""
    return re.sub(r"[^\w.-]", "_", env_id.replace("/", "__")) + suffix


class EpisodeRecorder:
    """Records sub-env 0 of every env of an evaluation for its first `episodes` episodes."""

    def __init__(
        self,
        out_dir: str | Path,
        episodes: int = 1,
        fmt: str = "mp4",
        max_frames: int = 240,
        max_side: int = 192,
        max_bytes: int = 1_500_000,
    ) -> None:
        if fmt not in FORMATS:
            raise EvalError(f"video format {fmt!r} is not one of {FORMATS}")
        self.out_dir, self.episodes, self.fmt = Path(out_dir), episodes, fmt
        self.max_frames, self.max_side, self.max_bytes = max_frames, max_side, max_bytes
        self.clips: dict[str, _Clip] = {}

    # -- protocol hooks ----------------------------------------------------------------------
    def started(self, run: Any) -> None:
        """The env's vector env was (re)opened and reset: start (over) at its first frame."""
        self.clips[run.env_id] = clip = _Clip()
        if getattr(run, "render_note", None):
            clip.note, clip.trace = run.render_note, EpisodeTrace()
            return
        self._grab(run, clip)

    def stepped(self, run: Any, done: bool, outcome: Any = None, actions: Any = None) -> None:
        """Sub-env 0 of the env stepped (`done`: its episode ended; the worker reset it).
        `outcome` is the env's step result and `actions` the slots' actions: sub-env 0's
        observation, action and reward are read from them only where the env draws no frames
        and its steps are traced."""
        clip = self.clips.get(run.env_id)
        if clip is None or clip.finished:
            return
        clip.t += 1
        if clip.trace is not None and outcome is not None:
            obs = outcome[0]
            obs0 = {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]
            clip.trace.add(obs0, actions[run.slots[0]], float(outcome[1][0]))
        if done:
            clip.episodes += 1
            if clip.episodes >= self.episodes:
                clip.finished = True
                return
        if clip.trace is None and clip.t % clip.every == 0:
            self._grab(run, clip)

    def _grab(self, run: Any, clip: _Clip) -> None:
        (frame,) = run.venv.render_frames([0], max_side=self.max_side)
        if isinstance(frame, str):
            clip.note, clip.trace, clip.frames = frame, EpisodeTrace(), []
            return
        clip.frames.append(frame)
        if len(clip.frames) >= self.max_frames:  # bounded: half the frames, half the renders
            clip.frames = clip.frames[::2]
            clip.every *= 2

    # -- output --------------------------------------------------------------------------------
    def write(self, paths: dict[str, Path] | None = None) -> dict[str, ClipResult]:
        """Write every clip (into `out_dir`, or at `paths[env_id]`); per env id, its result."""
        out: dict[str, ClipResult] = {}
        for env_id, clip in self.clips.items():
            if not clip.frames:
                out[env_id] = self._write_trace(env_id, clip, paths)
                continue
            path = (paths or {}).get(env_id) or self.out_dir / clip_name(env_id, f".{self.fmt}")
            frames = write_clip(clip.frames, path, max_bytes=self.max_bytes)
            out[env_id] = ClipResult(
                env_id, str(path), clip.note, frames, clip.episodes, clip.every
            )
        return out

    def _write_trace(self, env_id: str, clip: _Clip, paths: dict[str, Path] | None) -> ClipResult:
        note = clip.note or "no frame was rendered"
        if clip.trace is None or not clip.trace.steps:
            return ClipResult(env_id, None, note)
        given = (paths or {}).get(env_id)
        path = (
            Path(given).with_suffix(".png") if given else self.out_dir / clip_name(env_id, ".png")
        )
        title = f"{env_id}: {clip.trace.t} steps, return {clip.trace.total:.4g}"
        plot_trace(clip.trace, path, title)
        return ClipResult(env_id, str(path), note, len(clip.trace.steps), clip.episodes)


def _even(frames: list[np.ndarray]) -> np.ndarray:
    """Frames of one (even) size: padded with black to the largest, as H.264 needs."""
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    h, w = h + h % 2, w + w % 2
    out = np.zeros((len(frames), h, w, 3), np.uint8)
    for i, f in enumerate(frames):
        out[i, : f.shape[0], : f.shape[1]] = f
    return out


def write_clip(
    frames: list[np.ndarray], path: str | Path, fps: int = FPS, max_bytes: int = 1_500_000
) -> int:
    """Write frames as MP4 (H.264 via imageio-ffmpeg) or GIF (by the file's suffix), written to
    a temp name and renamed; halves the frames until the file is under `max_bytes`. Returns the
    number of frames written."""
    import os

    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise EvalError(f"{path}: no frames to write")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    arr = _even(frames)
    while True:
        if path.suffix == ".mp4":
            iio.imwrite(
                tmp,
                arr,
                extension=".mp4",
                plugin="FFMPEG",
                fps=fps,
                codec="libx264",
                macro_block_size=2,
                ffmpeg_log_level="error",
                output_params=["-pix_fmt", "yuv420p", "-movflags", "+faststart"],
            )
        else:
            iio.imwrite(tmp, arr, extension=".gif", duration=int(1000 / fps), loop=0)
        if tmp.stat().st_size <= max_bytes or len(arr) <= 8:
            break
        arr = arr[::2]
    os.replace(tmp, path)
    return len(arr)


def attach_clips(envs: list[EnvResult], clips: dict[str, ClipResult]) -> list[EnvResult]:
    """The env results with each env's clip path (or the note why it has none) set."""
    out = []
    for e in envs:
        c = clips.get(e.env_id)
        if c is not None:
            speed = c.speed if c.speed > 1 else None
            e = replace(e, clip=c.path, clip_note=c.note or None, clip_speed=speed)
        out.append(e)
    return out
