"""The report in a real browser (headless Chromium): it renders, its clips and figures decode,
and no link is broken. Skipped, with the reason, where Chromium is not installed
(`apt-get install chromium`)."""

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from ldm.eval import write_report
from ldm.eval.results import EvalResult
from ldm.eval.video import write_clip
from tests.eval.test_report_media import _store

CHROMIUM = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
)

# loads the report in a same-origin iframe, waits for its media, writes what it found
HARNESS = """<!doctype html><html><body><iframe id="f" src="report.html" width="1200"
height="900"></iframe><pre id="out">pending</pre><script>
const f = document.getElementById('f');
f.onload = async () => {
  const d = f.contentDocument;
  const media = [...d.querySelectorAll('video')].map(v => new Promise(done => {
    const ok = () => done({src: v.getAttribute('src'), ok: v.videoWidth > 0, w: v.videoWidth,
                           duration: v.duration});
    if (v.readyState >= 2) return ok();
    v.addEventListener('loadeddata', ok);
    v.addEventListener('error', () => done({src: v.getAttribute('src'), ok: false}));
  }));
  const imgs = [...d.querySelectorAll('img')].map(i => new Promise(done => {
    const ok = () => done({src: i.getAttribute('src').slice(0, 40), ok: i.naturalWidth > 0});
    if (i.complete) return ok();
    i.addEventListener('load', ok);
    i.addEventListener('error', () => done({src: i.getAttribute('src'), ok: false}));
  }));
  const out = {title: d.title, h2: [...d.querySelectorAll('h2')].map(h => h.textContent),
               videos: await Promise.all(media), images: await Promise.all(imgs),
               height: d.body.scrollHeight};
  document.getElementById('out').textContent = 'RESULT' + JSON.stringify(out) + 'END';
};
</script></body></html>"""


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v and not v.startswith(("data:", "#", "http")):
                self.targets.append(v)


def _report(tmp_path) -> Path:
    out = tmp_path / "eval"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (60, 90, 3), dtype=np.uint8) for _ in range(20)]
    write_clip(frames, out / "clips" / "lib__Env-v0.mp4")
    write_clip(frames, out / "references" / "clips" / "lib__Env-v0.gif")
    store = _store(tmp_path)
    train = tmp_path / "train"
    (train / "final").mkdir(parents=True)
    (train / "metrics.jsonl").write_text(
        "\n".join(
            json.dumps({"step": s, "train/loss": 1 / s, "val/accuracy": s / 10})
            for s in range(1, 9)
        )
    )
    run_id = sorted(store.runs())[0]
    results = {
        "policy": "ldm",
        "store": str(store.path),
        "checkpoint": str(train / "final"),
        "config": {"rollouts": 1, "episodes": 1, "deterministic": True},
        "summary": {
            "envs": 1,
            "scorable": 1,
            "at_80": 1,
            "at_100": 1,
            "share_at_80": 1.0,
            "share_at_100": 1.0,
            "failed": 0,
            "median_score": 101.0,
            "curve": {"thresholds": [0, 80, 100], "envs_at_or_above": [1, 1, 1]},
        },
        "envs": [
            {
                "env_id": "lib/Env-v0",
                "status": "ok",
                "normalised_score": 101.0,
                "mean_return": 9.1,
                "first10": 1.0,
                "last10": 9.0,
                "reference_run": run_id,
                "clip": str(out / "clips" / "lib__Env-v0.mp4"),
                "reference_clip": str(out / "references" / "clips" / "lib__Env-v0.gif"),
            }
        ],
    }
    return write_report(EvalResult.from_dict(results), out, title="browser check")["html"]


def test_report_renders_with_playable_clips_and_no_broken_links(tmp_path):
    page = _report(tmp_path)
    links = _Links()
    links.feed(page.read_text())
    assert links.targets  # the clips are files beside the report
    missing = [t for t in links.targets if not (page.parent / t).exists()]
    assert not missing, f"broken links: {missing}"
    (page.parent / "harness.html").write_text(HARNESS)
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--autoplay-policy=no-user-gesture-required",
            "--virtual-time-budget=15000",
            "--dump-dom",
            (page.parent / "harness.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "RESULT" in dom, dom[-2000:]
    got = json.loads(dom.split("RESULT", 1)[1].split("END", 1)[0].replace("&quot;", '"'))
    assert got["title"] == "browser check" and got["height"] > 1000
    assert {"Watch it act", "Reference learning curves", "Training curves"} <= set(got["h2"])
    assert got["videos"] and all(v["ok"] and v["w"] == 90 for v in got["videos"]), got["videos"]
    assert len(got["images"]) >= 4 and all(i["ok"] for i in got["images"]), got["images"]
