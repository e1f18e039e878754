"""Minari interoperability: export an env's runs as a Minari dataset, import one as runs.

Export: one Minari episode per finished (or trailing) episode of each stream; the reference
action goes into the per-step infos as `reference_action`; the env's anchors become
`ref_min_score` / `ref_max_score`. The store does not keep an episode's terminal observation
(SB3's auto-reset replaced it), so the last observation is repeated as the final one.
Import: each episode becomes a one-stream run (streams of a run advance together, and
episodes differ in length); targets are `infos["reference_action"]`
when present, else the dataset's actions. Minari datasets live under MINARI_DATASETS_PATH.

Storage: Minari writes HDF5 by default (needs h5py) and can write Arrow or Parquet (pyarrow);
import reads whichever a dataset uses, export writes HDF5 unless told otherwise, so that what
`ldm` writes is what Minari users expect.

Imports numpy, ldm.data.store, ldm.spaces, and minari inside its functions; never torch or
ldm.model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ldm.data.store import COLUMNS, Store
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


def export_minari(store_path: str, env_id: str, dataset_id: str, data_format: str = "hdf5") -> str:
    """Write the curated (else all) runs of `env_id` as the Minari dataset `dataset_id`, in
    one of Minari's storage formats (FORMATS; hdf5, Minari's default, unless told)."""
    _check_format(data_format)
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    store = Store(store_path, create=False)
    runs = store.runs(curated_only=True, env_id=env_id) or store.runs(env_id=env_id)
    if not runs:
        raise StoreError(f"store {store_path} has no run of {env_id} to export")
    episodes, first = [], None
    for run_id in runs:
        reader = store.open_run(run_id)
        first = first or reader
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
    assert first is not None
    meta = first.meta
    ds = minari.create_dataset_from_buffers(
        dataset_id=dataset_id,
        buffer=episodes,
        observation_space=to_gym_space(first.obs_spec),
        action_space=to_gym_space(first.act_spec),
        algorithm_name=f"ldm reference ({meta.get('algorithm')})",
        ref_min_score=meta.get("first10"),
        ref_max_score=meta.get("last10"),
        description=f"Reference-policy runs of {env_id} exported from an ldm store; per-step infos hold reference_action.",
        data_format=data_format,
    )
    # Minari keeps reference scores only when it can make the env itself; ldm's envs live in
    # isolated venvs, so the anchors are written into the dataset metadata directly.
    if meta.get("first10") is not None:
        ds.storage.update_metadata(
            {"ref_min_score": meta["first10"], "ref_max_score": meta["last10"]}
        )
    return f"{dataset_id}: {len(episodes)} episodes from {len(runs)} runs ({data_format})"


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
