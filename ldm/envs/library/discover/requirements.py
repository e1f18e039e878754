"""Discover's requirement handling: names of requirements, the ones a failure says are
missing (`pip install X`, `No module named 'x'`), and pinning a new spec to what resolved.

Imports ldm's catalog and venv modules; never an environment library.
"""

from __future__ import annotations

import datetime
import email.parser
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

from ldm.envs.library.catalog import LibrarySpec
from ldm.envs.library.venvs import ensure_venv, uv_binary

#: Failures that name a missing optional dependency: (reason pattern, group 1 -> requirement).
#: Discovery adds the requirements to the spec, rebuilds the venv and tries those envs again.
MISSING_DEPENDENCY = (
    (re.compile(r"pip install [\"'`]?([A-Za-z0-9_.\-]+(?:\[[A-Za-z0-9_,\-]+\])?)"), str),
    (
        re.compile(r"No module named '([A-Za-z0-9_]+)"),
        lambda m: MODULE_DIST.get(m, m.replace("_", "-")),
    ),
)
STDLIB = frozenset(sys.stdlib_module_names)
#: Import names whose distribution is named otherwise.
MODULE_DIST = {
    "yaml": "pyyaml",
    "cv2": "opencv-python-headless",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "Box2D": "box2d",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "torch": "torch==2.13.0",  # the CPU wheel on PyPI; an unpinned torch may pull CUDA builds
}
#: At most this many requirements are added for one library (a build or a retry).
MAX_ADDED_DEPENDENCIES = 6


def req_name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (`Foo_Bar[x]>=1` -> foo-bar)."""
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def missing_requirements(text: str, spec: LibrarySpec) -> list[str]:
    """Requirements a failure names as missing (`pip install X`, `No module named 'x'`)."""
    named = {req_name(r) for r in spec.requirements}
    out: list[str] = []
    for pattern, to_req in MISSING_DEPENDENCY:
        for found in pattern.findall(text):
            if found in STDLIB:
                continue  # e.g. distutils, gone from Python 3.12: the interpreter is the problem
            req = to_req(found)
            new = "[" in req and req not in spec.requirements or req_name(req) not in named
            itself = req_name(req) == spec.name and "[" not in req  # its extras are fine
            if new and not itself and req not in out:
                out.append(req)
    return out


def pin_installed(spec: LibrarySpec) -> LibrarySpec:
    """Bare requirement names pinned to the versions the venv resolved (reproducible specs)."""
    out = subprocess.run(
        [uv_binary(), "pip", "freeze", "--python", str(ensure_venv(spec))],
        capture_output=True,
        text=True,
    ).stdout
    versions = {}
    for line in out.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            versions[req_name(name)] = version.strip()
    flavour = "gymnasium" if spec.api == "gymnasium" else "gym"
    reqs = list(spec.requirements)
    if flavour in versions and flavour not in {req_name(r) for r in reqs}:
        reqs.append(flavour)
    pinned = [
        f"{r}=={versions[req_name(r)]}" if BARE.fullmatch(r) and req_name(r) in versions else r
        for r in reqs
    ]
    return replace(spec, requirements=pinned)


#: A requirement without a version or a URL, with or without extras (`gymnasium[mujoco]`).
BARE = re.compile(r"[A-Za-z0-9_.\-]+(\[[A-Za-z0-9_,\-]+\])?")
#: Project-URL labels naming the source repository, most telling first.
SOURCE_LABELS = ("source", "source code", "repository", "code", "github", "homepage")


def pypi_page(name: str) -> str:
    """A distribution's page on PyPI (a new spec's source until its metadata names another)."""
    return f"https://pypi.org/project/{name}/"


def project_source(python: Path, requirement: str) -> str:
    """The source repository a distribution's metadata names (a `Project-URL` labelled
    source/repository, else its `Home-page`), read from its `.dist-info` in the venv of
    `python`; "" when the metadata names none."""
    want = req_name(requirement).replace("-", "_").replace(".", "_")
    venv = python.parent.parent
    for meta in venv.glob("lib/python*/site-packages/*.dist-info/METADATA"):
        if meta.parent.name.partition("-")[0].lower().replace(".", "_") != want:
            continue
        msg = email.parser.Parser().parsestr(meta.read_text(errors="replace"), headersonly=True)
        urls = {}
        for entry in msg.get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            urls.setdefault(label.strip().lower(), url.strip())
        named = [urls[k] for k in SOURCE_LABELS if k in urls]
        home = (msg.get("Home-page") or "").strip()
        found = [u for u in [*named, home] if u.startswith(("https://", "http://"))]
        return found[0] if found else ""
    return ""


def release_date(requirement: str, timeout: float = 300) -> str:
    """The day after a PyPI requirement's newest matching file was built (YYYY-MM-DD), read
    from the archive pip downloads; "" for a URL or path, a failed download or an archive
    without real dates. A build variant resolves the library's dependencies as of then."""
    if "@" in requirement or "/" in requirement or requirement.startswith("."):
        return ""
    with tempfile.TemporaryDirectory(prefix="ldm-release-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp]
        try:
            subprocess.run([*cmd, requirement], capture_output=True, timeout=timeout, check=True)
        except (subprocess.SubprocessError, OSError):
            return ""
        built = [archive_date(f) for f in Path(tmp).iterdir()]
    day = max((d for d in built if d is not None), default=None)
    return (day + datetime.timedelta(days=1)).isoformat() if day else ""


def archive_date(path: Path) -> datetime.date | None:
    """When a wheel or sdist was built: its newest member's time (None for the 1980 or 1970
    stamps of reproducible builds, or an unknown format)."""
    if path.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(path) as z:
            newest = max(datetime.datetime(*i.date_time) for i in z.infolist())
    elif path.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as t:
            newest = datetime.datetime.fromtimestamp(max(m.mtime for m in t.getmembers()))
    else:
        return None
    return newest.date() if newest.year > 1990 else None
