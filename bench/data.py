"""Trajectory store and sampler: loader speed against the training step's appetite, and size.

Keys: loader_vs_consumer (windows/s the sampler delivers / windows/s the training step of the
tiny preset consumes, same L; goal >= 10), bytes_vs_raw_vector, bytes_vs_raw_image;
also zarr against plain .npy (the alternative format) for the vector run;
check_cost_<kind>_<cache> (1 - windows/s of checked columns / windows/s of the same data as
legacy columns, no per-chunk check: the price of a stat and zstd's checksum per chunk read;
goal <= 0.05), with the chunk cache warm (as in training) and off (every window reads its
chunks); check_cost_crc32c_<kind>_<cache>: the same with zarr's crc32c codec instead.
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from zarr.codecs import Crc32cCodec, ZstdCodec

sys.path.insert(0, str(Path(__file__).parent))
from _common import args, report  # noqa: E402

from ldm.data import Store, WindowSampler  # noqa: E402
from ldm.data.upgrade import rewrite_run  # noqa: E402
from ldm.model import LDMPolicy, preset  # noqa: E402
from ldm.spaces import SpaceSpec  # noqa: E402

VEC = SpaceSpec("continuous", (17,), low=(-10.0,) * 17, high=(10.0,) * 17)
ACT = SpaceSpec("continuous", (6,), low=(-1.0,) * 6, high=(1.0,) * 6)
IMG = SpaceSpec("image", (64, 64, 3), "uint8")
DISC = SpaceSpec("discrete", (), "int64", n=6)


def record(
    store: Store, env_id: str, obs_spec: SpaceSpec, act_spec: SpaceSpec, steps: int
) -> tuple[str, int]:
    """A run of smooth, realistic-looking data (random walks), relabelled and curated."""
    rng = np.random.default_rng(0)
    K = 4
    w = store.create_run(env_id, env_id.split("/")[0], obs_spec, act_spec, K, {})
    raw = 0
    if obs_spec.kind == "image":
        base = rng.integers(0, 255, (K, 64, 64, 3)).astype(np.int16)
    else:
        x = np.zeros((K, 17))
    for t in range(steps):
        if obs_spec.kind == "image":
            base = (base + rng.integers(-2, 3, base.shape)) % 256
            obs = base.astype(np.uint8)
        else:
            x = x + rng.normal(0, 0.05, x.shape)
            obs = x.astype(np.float32)
        act = (
            rng.integers(0, 6, K)
            if act_spec.kind == "discrete"
            else np.tanh(x[:, :6]).astype(np.float32)
        )
        rew, done = rng.normal(size=K), np.full(K, (t + 1) % 200 == 0)
        w.append(obs, act, rew, done, np.zeros(K, bool))
        raw += obs.nbytes + np.asarray(act).nbytes * 2 + 4 * K + 2 * K
    rid = w.commit()
    r = store.open_run(rid)
    for k in range(K):
        store.write_reference_actions(rid, k, r.read(k, "actions"))
    store.update_meta(rid, {"curation": {"verdict": "pass"}})
    return rid, raw


def check_cost(stores: dict[str, Store], seconds: float, rounds: int) -> dict[str, float]:
    """Windows per CPU-second of this process (all its threads: zarr decodes in its own) of
    each encoding of the same runs against `stores["legacy"]`, with the chunk cache warm
    (training's usual case: a chunk is checked when it enters the cache) and off (every
    window decodes its chunks). The encodings alternate in rounds; a cost is the median of
    the rounds' paired ratios (the machine is shared: single rounds moved by +-15%)."""
    out: dict[str, float] = {}
    for kind, env in (("vector", "bench/Vec-v0"), ("image", "bench/Img-v0")):
        for cache, limit in (("warm", 1 << 30), ("cold", 0)):
            samplers = {
                name: WindowSampler(s, 256, envs=[env], cache_bytes=limit)
                for name, s in stores.items()
            }
            for sampler in samplers.values():
                sampler.batch(8, 0, 0, 0)  # opens the columns (a legacy one is hashed whole)
            rates: dict[str, list[float]] = {name: [] for name in samplers}
            for r in range(rounds):
                order = list(samplers.items())[:: 1 if r % 2 else -1]
                for name, sampler in order:
                    t0, n = time.process_time(), 0
                    while time.process_time() - t0 < seconds:
                        sampler.batch(8, 0, 0, n)
                        n += 1
                    rates[name].append(n * 8 / (time.process_time() - t0))
            for name, rs in rates.items():
                out[f"windows_per_cpu_s_{kind}_{cache}_{name}"] = round(float(np.median(rs)), 1)
                if name != "legacy":
                    ratio = np.median(np.array(rs) / np.array(rates["legacy"]))
                    prefix = "check_cost" if name == "checked" else f"check_cost_{name}"
                    out[f"{prefix}_{kind}_{cache}"] = round(1 - float(ratio), 3)
    return out


def dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> None:
    a = args(__doc__)
    steps_vec, steps_img = (5000, 600) if a.quick else (50000, 3000)
    L = 256
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "store")
        rv, raw_v = record(store, "bench/Vec-v0", VEC, ACT, steps_vec)
        ri, raw_i = record(store, "bench/Img-v0", IMG, DISC, steps_img)
        bytes_v = dir_bytes(store.path / "runs" / rv)
        bytes_i = dir_bytes(store.path / "runs" / ri)
        # alternative format: plain .npy files of the same arrays
        npy = Path(d) / "npy"
        npy.mkdir()
        r = store.open_run(rv)
        for k in range(r.num_streams):
            for c in ("obs", "actions", "ref_actions", "rewards", "terminated", "truncated"):
                np.save(npy / f"{k}_{c}.npy", r.read(k, c))
        bytes_npy = dir_bytes(npy)

        out = {}
        model = LDMPolicy(preset("ldm-tiny", context=L))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        for kind, env in (("vector", "bench/Vec-v0"), ("image", "bench/Img-v0")):
            sampler = WindowSampler(store, L, envs=[env])
            sampler.batch(8, 0, 0, 0)  # warm the chunk cache, as a long training run has
            t0, n = time.perf_counter(), 0
            while time.perf_counter() - t0 < (3 if a.quick else 10):
                b = sampler.batch(8, 0, 0, n)
                n += 1
            loader_wps = n * 8 / (time.perf_counter() - t0)
            tb = b.to()
            t0, m = time.perf_counter(), 0
            while time.perf_counter() - t0 < (3 if a.quick else 10):
                loss, _ = model.loss(tb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                m += 1
            consumer_wps = m * 8 / (time.perf_counter() - t0)
            out[f"loader_windows_per_s_{kind}"] = round(loader_wps, 1)
            out[f"consumer_windows_per_s_{kind}"] = round(consumer_wps, 1)
            out[f"loader_vs_consumer_{kind}"] = round(loader_wps / consumer_wps, 2)
        out["loader_vs_consumer"] = min(
            out["loader_vs_consumer_vector"], out["loader_vs_consumer_image"]
        )
        out["window"] = L
        out["bytes_vs_raw_vector"] = round(bytes_v / raw_v, 3)
        out["bytes_vs_raw_image"] = round(bytes_i / raw_i, 3)
        out["npy_vs_zarr_bytes_vector"] = round(bytes_npy / bytes_v, 2)
        stores = {"checked": store}
        for name, checked, codecs in (
            ("legacy", False, None),  # as written before per-chunk checksums
            ("crc32c", True, (ZstdCodec(level=0), Crc32cCodec())),  # the other way to check
        ):
            shutil.copytree(store.path, Path(d) / name)
            stores[name] = Store(Path(d) / name)
            for rid in (rv, ri):
                rewrite_run(stores[name], rid, checked, codecs)
        out.update(check_cost(stores, *((0.4, 6) if a.quick else (1.0, 10))))
        report(out)


if __name__ == "__main__":
    main()
