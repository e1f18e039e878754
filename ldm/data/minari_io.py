"""Minari interoperability: export an env's runs as a Minari dataset, import one as runs.

Export: the runs of one env chosen (all, the curated ones, or named ones), one Minari
episode per finished (or trailing) episode of each stream, with the env spec that remakes
the catalogued env through ldm (Minari's `recover_environment()`); the reference
action goes into the per-step infos as `reference_action`; the env's anchors become
`ref_min_score` / `ref_max_score`. The store does not keep an episode's terminal observation
(SB3's auto-reset replaced it), so the last observation is repeated as the final one.
Import: each episode becomes a one-stream run (streams of a run advance together, and
episodes differ in length); targets are `infos["reference_action"]`
when present, else the dataset's actions. Minari datasets live under MINARI_DATASETS_PATH.

Storage: Minari writes HDF5 by default (needs h5py) and can write Arrow or Parquet (pyarrow);
import reads whichever a dataset uses, export writes HDF5 unless told otherwise, so that what
`ldm` writes is what Minari users expect.

Imports numpy, gymnasium (spaces, the env spec), ldm.data.store/columns/meta/reader, ldm.spaces, ldm.envs'
registry (ids and env specs; no env is made), and minari inside its functions; never torch
or ldm.model.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import ldm
from ldm.data.columns import COLUMNS
from ldm.data.meta import ManifestEntry, RunMeta
from ldm.data.reader import RunReader
from ldm.data.store import Store
from ldm.errors import StoreError
from ldm.spaces import from_gym_space, to_gym_space

#: Minari's storage formats -> the package each needs (Minari's own default first).
FORMATS = {"hdf5": "h5py", "arrow": "pyarrow", "parquet": "pyarrow"}


def _check_format(data_format: str) -> None:
    import importlib.util

    if data_format not in FORMATS:
        raise StoreError(
            f"Minari storage format {data_format!r} is unknown; choose one of {list(FORMATS)}"
        )
    need = FORMATS[data_format]
    if importlib.util.find_spec(need) is None:
        raise StoreError(
            f"Minari's {data_format} storage needs the package {need}, which is not installed: "
            f"`pip install {need}` (or `pip install 'ldm[minari]'`)"
        )


def _load_dataset(dataset_id: str) -> Any:
    """minari.load_dataset, with a clear error for a missing dataset or storage package."""
    import minari

    try:
        return minari.load_dataset(dataset_id)
    except FileNotFoundError as e:
        raise StoreError(
            f"no local Minari dataset {dataset_id!r} under MINARI_DATASETS_PATH "
            f"(or ~/.minari/datasets): {e}"
        ) from None
    except ImportError as e:
        raise StoreError(
            f"Minari dataset {dataset_id!r} needs a storage package that is missing ({e}); "
            "`pip install 'ldm[minari]'` installs h5py and pyarrow"
        ) from None


def _info_column(values: np.ndarray, last: np.ndarray) -> Any:
    """A per-step info column (one more entry than actions, as Minari wants). Scalars per step
    go as a list: Minari's Arrow storage writes a 1-D array with an empty shape tag that its own
    reader cannot parse back (int(b'')), while a list is stored as a plain column."""
    col = np.concatenate([values, last])
    return col.tolist() if col.ndim == 1 else col


@dataclass(frozen=True)
class MinariExport:
    """What `export_minari` wrote."""

    dataset_id: str
    env_id: str
    runs: tuple[str, ...]
    curated: int
    """How many of `runs` passed curation."""
    episodes: int
    steps: int
    data_format: str
    env_spec: str | None
    """The Gymnasium id the dataset's env spec makes (None: the env is not catalogued)."""
    unnamed: tuple[str, ...] = ()
    """Minari's attribution fields left empty (author, author_email, code_permalink)."""

    def describe(self) -> str:
        shown = ", ".join(self.runs[:8]) + (
            f" and {len(self.runs) - 8} more" if len(self.runs) > 8 else ""
        )
        lines = [
            f"{self.dataset_id}: {self.episodes} episodes ({self.steps} steps) of {self.env_id} "
            f"from {len(self.runs)} runs ({self.curated} curated), {self.data_format}",
            f"  runs: {shown}",
            f"  env spec: {self.env_spec} (dataset.recover_environment() makes it through ldm)"
            if self.env_spec
            else f"  no env spec: {self.env_id} is not a catalogued env",
        ]
        if self.unnamed:
            flags = ", ".join("--" + f.replace("_", "-") for f in self.unnamed)
            lines.append(f"  not named: {', '.join(self.unnamed)} (give {flags})")
        return "\n".join(lines)


def select_runs(
    store: Store, env_id: str | None, run_ids: tuple[str, ...] = (), curated_only: bool = False
) -> tuple[str, dict[str, Any]]:
    """(env id, {run id: manifest entry}) to export: the runs named, else every run of the
    env (only those that passed curation with `curated_only`); the env may be left out when
    the runs, or the store, have only one."""
    every = store.runs()
    if run_ids:
        missing = [r for r in run_ids if r not in every]
        if missing:
            raise StoreError(f"store {store.path} has no run {missing[0]!r} (`ldm data stats`)")
        chosen = {r: every[r] for r in run_ids}
    else:
        chosen = {r: e for r, e in every.items() if env_id is None or e.env_id == env_id}
    envs = sorted({e.env_id for e in chosen.values()})
    if env_id is None and len(envs) > 1:
        raise StoreError(
            f"a Minari dataset holds one env; the runs are of {len(envs)} envs ({envs[:5]}): "
            "choose one with --env"
        )
    env_id = env_id or (envs[0] if envs else "")
    if envs and envs != [env_id]:
        raise StoreError(f"--run names runs of {envs}, not only of --env {env_id}")
    if curated_only:
        chosen = {r: e for r, e in chosen.items() if e.verdict == "pass"}
    if not chosen:
        which = "curated run" if curated_only else "run"
        raise StoreError(f"store {store.path} has no {which} of {env_id or 'any env'} to export")
    return env_id, chosen


def _episodes(store: Store, run_ids: list[str]) -> list[Any]:
    """One Minari episode buffer per finished (or trailing) episode of each run's streams."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    episodes = []
    for run_id in run_ids:
        reader = store.open_run(run_id, episodes=False)
        for k in range(reader.num_streams):
            cols = {c: reader.read(k, c) for c in COLUMNS}
            ref = (
                reader.read(k, "ref_actions") if reader.has_reference_actions() else cols["actions"]
            )
            ends = np.flatnonzero(cols["terminated"] | cols["truncated"])
            starts = np.concatenate([[0], ends + 1])
            stops = np.concatenate([ends + 1, [len(cols["rewards"])]])
            for a, b in zip(starts, stops):
                if b <= a:
                    continue
                obs = np.concatenate([cols["obs"][a:b], cols["obs"][b - 1 : b]])
                trunc = cols["truncated"][a:b].copy()
                if not (cols["terminated"][b - 1] or trunc[-1]):
                    trunc[-1] = True  # a trailing, unfinished episode ends as truncated
                episodes.append(
                    EpisodeBuffer(
                        id=len(episodes),
                        observations=obs,
                        actions=cols["actions"][a:b],
                        rewards=cols["rewards"][a:b].astype(np.float64),
                        terminations=cols["terminated"][a:b],
                        truncations=trunc,
                        infos={"reference_action": _info_column(ref[a:b], ref[b - 1 : b])},
                    )
                )
    return episodes


class _SpecOnlyEnv(gym.Env):
    """What Minari reads of the env at export: its spaces and spec. Never reset nor stepped:
    given an id, Minari would make the env (start its isolated worker, or first build the
    library's venv) only to read what the store already knows."""

    def __init__(self, spec: Any, observation_space: Any, action_space: Any) -> None:
        self.spec = spec
        self.observation_space, self.action_space = observation_space, action_space


def _env_spec(env_id: str) -> Any:
    """The Gymnasium EnvSpec that remakes a catalogued env (None for another id)."""
    from ldm.envs.gym_spec import env_spec
    from ldm.envs.library.registry import resolve_env_id
    from ldm.errors import EnvError

    try:
        resolve_env_id(env_id)
    except EnvError:
        return None
    return env_spec(env_id)


#: Minari's attribution fields: each warns when left None
ATTRIBUTION = ("author", "author_email", "code_permalink")


def _first_and_anchor(
    store: Store, env_id: str, chosen: dict[str, ManifestEntry]
) -> tuple[RunReader, RunMeta]:
    """The first chosen run's reader (its spaces are the dataset's: every run must share
    them) and the meta of the run whose anchors the dataset takes: a curated run where there
    is one (the reference the store trusts), else the first."""
    readers = {r: store.open_run(r, episodes=False) for r in chosen}
    first = next(iter(readers.values()))
    odd = [
        r
        for r, x in readers.items()
        if (x.obs_spec, x.act_spec) != (first.obs_spec, first.act_spec)
    ]
    if odd:
        raise StoreError(f"runs {odd[:3]} of {env_id} have other spaces than {first.run_id}")
    anchor = next((readers[r] for r, e in chosen.items() if e.verdict == "pass"), first).meta
    return first, anchor


def export_minari(
    store_path: str,
    env_id: str | None,
    dataset_id: str,
    data_format: str = "hdf5",
    run_ids: tuple[str, ...] = (),
    curated_only: bool = False,
    **attribution: str | None,
) -> MinariExport:
    """Write runs of one env as the Minari dataset `dataset_id`: every run of `env_id`, only
    its curated ones, or the runs named (`select_runs`), in one of Minari's storage formats
    (FORMATS; hdf5, Minari's default, unless told), with the env spec that remakes the env
    (`recover_environment()`) and `author`/`author_email`/`code_permalink` when given. A
    failed export leaves no dataset behind."""
    _check_format(data_format)
    import minari
    from minari.storage import get_dataset_path

    unknown = set(attribution) - set(ATTRIBUTION)
    if unknown:
        raise TypeError(f"export_minari() got unexpected keyword arguments {sorted(unknown)}")
    store = Store(store_path, create=False)
    env_id, chosen = select_runs(store, env_id, run_ids, curated_only)
    path = Path(get_dataset_path(dataset_id))
    if path.exists():
        raise StoreError(
            f"Minari dataset {dataset_id!r} exists already ({path}); choose another id or "
            f"version, or delete it (`minari delete {dataset_id}`)"
        )
    first, anchor = _first_and_anchor(store, env_id, chosen)
    spec = _env_spec(env_id)
    obs_space, act_space = to_gym_space(first.obs_spec), to_gym_space(first.act_spec)
    given = {k: v for k, v in attribution.items() if v is not None}
    unnamed = tuple(k for k in ATTRIBUTION if k not in given)
    episodes = _episodes(store, list(chosen))
    try:
        with warnings.catch_warnings():
            for field_name in unnamed:  # said once, in the summary
                warnings.filterwarnings("ignore", message=f"`{field_name}` is set to None")
            ds = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=episodes,
                env=_SpecOnlyEnv(spec, obs_space, act_space) if spec else None,
                eval_env=spec,
                observation_space=obs_space,
                action_space=act_space,
                algorithm_name=f"ldm reference ({anchor.algorithm})",
                description=(
                    f"Reference-policy runs of {env_id} exported from an ldm store; per-step "
                    "infos hold reference_action."
                ),
                requirements=[f"ldm>={ldm.__version__}"] if spec else None,
                data_format=data_format,
                author=given.get("author"),
                author_email=given.get("author_email"),
                code_permalink=given.get("code_permalink"),
            )
            # Minari computes reference scores by playing the env; the store has them
            if anchor.first10 is not None:
                ds.storage.update_metadata(
                    {"ref_min_score": anchor.first10, "ref_max_score": anchor.last10}
                )
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return MinariExport(
        dataset_id,
        env_id,
        tuple(chosen),
        sum(e.verdict == "pass" for e in chosen.values()),
        len(episodes),
        int(sum(len(e.rewards) for e in episodes)),
        data_format,
        spec.id if spec else None,
        unnamed,
    )


def import_minari(dataset_id: str, store_path: str, env_id: str | None = None) -> str:
    """Import a local Minari dataset (any of its storage formats) as runs (one per episode),
    curated as passed."""
    ds = _load_dataset(dataset_id)
    obs_spec, act_spec = from_gym_space(ds.observation_space), from_gym_space(ds.action_space)
    env_id = env_id or f"minari/{dataset_id}"
    store = Store(store_path)
    episodes = list(ds.iterate_episodes())
    if not episodes:
        raise StoreError(f"Minari dataset {dataset_id} has no episodes")
    has_ref = all("reference_action" in (e.infos or {}) for e in episodes)
    lengths = [len(e.rewards) for e in episodes]
    run_id = f"{env_id.replace('/', '__')}-minari-{Path(dataset_id).name}"
    run_ids = []
    for i, e in enumerate(episodes):
        w = store.create_run(
            env_id,
            env_id.split("/")[0],
            obs_spec,
            act_spec,
            1,
            {
                "algorithm": "minari",
                "source": dataset_id,
                "episode": i,
                "targets_from_actions": not has_ref,
            },
            run_id=f"{run_id}-{i}",
        )
        for t in range(lengths[i]):
            w.append(
                e.observations[t][None],
                np.asarray(e.actions[t])[None],
                np.asarray([e.rewards[t]]),
                np.asarray([e.terminations[t]]),
                np.asarray([e.truncations[t]]),
            )
        rid = w.commit()
        ref = (
            np.asarray(e.infos["reference_action"][: lengths[i]])
            if has_ref
            else np.asarray(e.actions)
        )
        store.write_reference_actions(rid, 0, ref)
        updates: dict[str, Any] = {
            "relabelled": True,
            "curation": {"verdict": "pass", "reasons": [f"imported from Minari {dataset_id}"]},
        }
        scores = ds.storage.metadata
        if scores.get("ref_min_score") is not None and scores.get("ref_max_score") is not None:
            updates.update(
                first10=float(scores["ref_min_score"]), last10=float(scores["ref_max_score"])
            )
        store.update_meta(rid, updates)
        run_ids.append(rid)
    return f"{dataset_id}: {len(run_ids)} episodes imported as runs of {env_id}"
