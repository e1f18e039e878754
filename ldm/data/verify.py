"""Store integrity: re-read every array of every run and compare shapes and checksums.

Every chunk is read through its check (ldm/data/chunks.py: a missing or changed chunk of a
checked column is named by its number), and every column is hashed whole and compared with
the sha256 its writer recorded: that vouches for legacy columns, which have no per-chunk
checksum; and each run's manifest entry against its meta.json (the stream lengths the sampler
starts from). Imports ldm.data.store/columns/meta and ldm.data.chunks only (no torch, no
environment library).
"""

from __future__ import annotations

from ldm.data.columns import COLUMNS
from ldm.data.meta import ManifestEntry
from ldm.data.store import Store
from ldm.errors import DamagedRunError


def verify_run(store: Store, run_id: str, entry: ManifestEntry | None = None) -> list[str]:
    """Problems found in one committed run (empty when it is intact); with its manifest
    `entry`, stream lengths there that differ from meta.json's are one (the sampler's index)."""
    problems: list[str] = []
    try:
        reader = store.open_run(run_id)
    except Exception as e:
        return [f"cannot open: {e}"]
    lengths = tuple(reader.length(k) for k in range(reader.num_streams))
    if entry is not None and entry.stream_lengths not in (None, lengths):
        problems.append(
            f"manifest.json says stream lengths {list(entry.stream_lengths or ())}, meta.json "
            f"{list(lengths)}: `ldm data upgrade {store.path}` rewrites the entry"
        )
    sums = reader.meta.checksums
    for k in range(reader.num_streams):
        n = reader.length(k)
        cols = list(COLUMNS) + (["ref_actions"] if f"s{k}/ref_actions" in sums else [])
        for c in cols:
            key = f"s{k}/{c}"
            try:
                arr = reader.array(k, c)
                if arr.shape[0] != n:
                    problems.append(f"{key}: {arr.shape[0]} steps, metadata says {n}")
                    continue
                col = reader.column(k, c)  # a legacy column is hashed whole here
                h = col.sha256() if col.checked else None
            except DamagedRunError as e:
                problems.append(f"{key}: {e.what}")
                continue
            except Exception as e:
                problems.append(f"{key}: unreadable chunk ({type(e).__name__}: {e})")
                continue
            if h is None:  # legacy: vouched for by its sha256 when opened
                continue
            if key not in sums:
                problems.append(f"{key}: no checksum recorded")
            elif h != sums[key]:
                problems.append(f"{key}: checksum mismatch (data changed or corrupted)")
    return problems


def verify_store(store: Store) -> dict[str, list[str]]:
    """run id -> problems, for every run with problems."""
    store.reconcile()
    bad = {}
    for run_id, entry in store.runs().items():
        problems = verify_run(store, run_id, entry)
        if problems:
            bad[run_id] = problems
    return bad


def store_stats(store: Store) -> dict:
    """Runs, envs, libraries, transitions, bytes on disk per transition by modality."""
    runs = store.runs()
    by_modality: dict[str, dict[str, float]] = {}
    for run_id, e in runs.items():
        reader = store.open_run(run_id)
        kind = reader.obs_spec.kind
        size = sum(
            f.stat().st_size for f in (store.path / "runs" / run_id).rglob("*") if f.is_file()
        )
        m = by_modality.setdefault(kind, {"bytes": 0, "transitions": 0})
        m["bytes"] += size
        m["transitions"] += e.transitions
    return {
        "runs": len(runs),
        "envs": len({e.env_id for e in runs.values()}),
        "libraries": len({e.library for e in runs.values()}),
        "transitions": int(sum(e.transitions for e in runs.values())),
        "curated_pass": sum(1 for e in runs.values() if e.verdict == "pass"),
        "pending": len(store.pending()),
        "bytes_per_transition": {
            k: round(v["bytes"] / max(1, v["transitions"]), 2) for k, v in by_modality.items()
        },
    }
