"""`ldm data ...`: stats, verify, upgrade, Minari import/export.

Imports tyro, and ldm.data's modules inside each command (so `ldm data --help` stays
fast); never torch, ldm.model or an environment library.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import tyro


def stats(
    store: tyro.conf.Positional[str], json_: Annotated[bool, tyro.conf.arg(name="json")] = False
) -> int:
    """Runs, envs, libraries, transitions and bytes per transition by modality.

    Args:
        store: Store directory.
        json_: Print JSON.
    """
    from ldm.data.store import Store
    from ldm.data.verify import store_stats

    s = store_stats(Store(store, create=False))
    if json_:
        print(json.dumps(s))
    else:
        for k, v in s.items():
            print(f"{k:>22}: {v}")
    return 0


def verify(store: tyro.conf.Positional[str]) -> int:
    """Re-check every run's shapes and checksums; exit non-zero naming each bad run.

    Args:
        store: Store directory.
    """
    from ldm.data.store import Store
    from ldm.data.verify import verify_store

    s = Store(store, create=False)
    bad = verify_store(s)
    for run_id, problems in bad.items():
        print(f"BAD {run_id}")
        for p in problems:
            print(f"    - {p}")
    legacy = sum(
        1 for r in s.runs() if r not in bad and s.open_run(r, episodes=False).legacy_columns()
    )
    print(f"{len(s.runs()) - len(bad)} runs ok, {len(bad)} bad")
    if legacy:
        print(
            f"{legacy} good runs have no per-chunk checksum (written before them): readers "
            f"hash each of their columns whole when they open it; `ldm data upgrade {store}` "
            "adds the checksums in place"
        )
    if bad:
        print(
            "a bad run: restore runs/<id> from a copy of the store if there is one, or "
            "train with --on-bad-run drop (training skips it, says so and counts it)"
        )
    return 1 if bad else 0


def upgrade(store: tyro.conf.Positional[str]) -> int:
    """Add a checksum per chunk to runs written before ldm checked every chunk it reads, in
    place: each column is checked against its sha256, copied, checked again and swapped in.
    A damaged run is left as it was and named; exit non-zero then. Manifest entries written
    before they held stream lengths get them (the sampler then starts without opening runs).

    Args:
        store: Store directory (no other process may read or write it meanwhile).
    """
    from ldm.data.store import Store
    from ldm.data.upgrade import upgrade_store

    report = upgrade_store(
        Store(store, create=False), progress=lambda rid, outcome: print(f"{rid}: {outcome}")
    )
    print(
        f"{len(report.upgraded)} runs upgraded, {len(report.already)} already checked, "
        f"{len(report.damaged)} damaged (see `ldm data verify {store}`); "
        f"{len(report.reindexed)} manifest entries given their stream lengths"
    )
    return 1 if report.damaged else 0


def export_minari(
    store: tyro.conf.Positional[str],
    dataset_id: tyro.conf.Positional[str],
    env: str | None = None,
    run: tuple[str, ...] = (),
    curated_only: bool = False,
    format: Literal["hdf5", "arrow", "parquet"] = "hdf5",
    author: str | None = None,
    author_email: str | None = None,
    code_permalink: str | None = None,
) -> int:
    """Write runs of one env as a Minari dataset (reference actions as per-step infos, the
    env spec that remakes the env), and say what was exported.

    Args:
        store: Store directory.
        dataset_id: Minari dataset id to write (`namespace/name-vN`, e.g. ldm/cartpole/ref-v0),
            under MINARI_DATASETS_PATH (default ~/.minari/datasets).
        env: Env id whose runs to export (may be left out when the store or --run has one env).
        run: Export only these run ids (`ldm data stats`); default every run of the env.
        curated_only: Only runs that passed curation (the ones `ldm train` learns from).
        format: Minari storage format (hdf5 is Minari's default; arrow/parquet need pyarrow).
        author: Minari's author field.
        author_email: Minari's author_email field.
        code_permalink: Minari's code_permalink field (a link to the code that made the data).
    """
    from ldm.data.minari_io import export_minari as run_export

    done = run_export(
        store,
        env,
        dataset_id,
        data_format=format,
        run_ids=run,
        curated_only=curated_only,
        author=author,
        author_email=author_email,
        code_permalink=code_permalink,
    )
    print(done.describe())
    return 0


def import_minari(dataset: tyro.conf.Positional[str], store: tyro.conf.Positional[str]) -> int:
    """Import a local Minari dataset, HDF5 or Arrow, as runs (its actions as targets when no
    reference actions).

    Args:
        dataset: Minari dataset id (local).
        store: Store directory.
    """
    from ldm.data.minari_io import import_minari as run

    print(run(dataset, store))
    return 0


COMMANDS = {
    "stats": stats,
    "verify": verify,
    "upgrade": upgrade,
    "export-minari": export_minari,
    "import-minari": import_minari,
}
