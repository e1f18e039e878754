"""A store's fingerprint: one short hash that names exactly which data a model was trained on.

It hashes, for every curated run in run-id order, the run id and the checksums its writer
recorded for each column (reference actions included), so two stores with the same runs and
the same bytes have the same fingerprint, and any added, removed, relabelled or changed run
gives another. Reads only `meta.json` files (no array data). Imports: ldm.data.store only.
"""

from __future__ import annotations

import hashlib
import json

from ldm.data.store import Store


def store_fingerprint(store: Store, curated_only: bool = True) -> str:
    """`sha256:<16 hex>` over the (curated) runs' ids and column checksums."""
    h = hashlib.sha256()
    runs = store.runs(curated_only=curated_only) or store.runs()
    for run_id in sorted(runs):
        sums = store.open_run(run_id, episodes=False).meta.checksums
        h.update(json.dumps([run_id, sorted(sums.items())]).encode())
    return f"sha256:{h.hexdigest()[:16]}"
