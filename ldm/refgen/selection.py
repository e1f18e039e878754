"""Selection by rule: which catalogued envs a run takes, without a hand-written list.

A `SelectionRule` (the `[refgen.select]` table) names libraries (or every one), a cap of K envs
per library (the paper's 250) and a `select_seed`. `select_envs` keeps the envs that passed
their own checks (`ldm envs check`, recorded in the catalog, with the library's declared
wrappers: what the hub makes pass) and that some candidate of the pool can train, then spreads
each library's pick over its families and draws within them with the seed. A family stands in
for an env class / entry point: the catalog records no entry points, so it is the registered
id with its version and every number taken out (lbforaging's 960 grid / player / food
variants are 4 families, `Foraging-#x#-#p-#f` and its `-coop` / `#s-` forms).

The result is a typed `Selection`: the pick by library, each env's family, and for every env
left out one `Exclusion` with its reason (`ldm run CONFIG --dry-run` prints them).

Owns: `SelectionRule`, `Selection`, `Exclusion`, `env_family` and `select_envs`. Imports the
catalog's listing (ldm.envs.library.registry/catalog: file reading only) and refgen's candidates;
must not import the backends, SB3, torch or any later part (the dry run stays light).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from ldm.errors import RefGenError, known_keys
from ldm.refgen.candidates import Candidate

#: why an env is out, in words (the dry run's and the report's vocabulary)
Reason = Literal[
    "library not installable",
    "never checked",
    "check: seeds do not reproduce",
    "check: observation outside its space",
    "check: other problem",
    "no candidate runs on its spaces",
    "over the per-library cap",
]

#: a check problem's words -> its reason (first match wins; the problems are `ldm envs
#: check`'s own messages)
PROBLEM_REASONS: tuple[tuple[str, Reason], ...] = (
    ("of a seeded episode", "check: observation outside its space"),
    ("gave different obs", "check: seeds do not reproduce"),
    ("Deterministic", "check: seeds do not reproduce"),
    ("did not reproduce", "check: seeds do not reproduce"),
    ("non-deterministic", "check: seeds do not reproduce"),
)


def problem_reason(problems: tuple[str, ...]) -> Reason:
    """The exclusion reason of an env whose own checks found `problems` (the first one's)."""
    for words, reason in PROBLEM_REASONS:
        if words in problems[0]:
            return reason
    return "check: other problem"


def env_family(registered_id: str) -> str:
    """The family of an env: its registered id without the version and with every number
    replaced by `#` (`Foraging-8x8-2p-3f-v3` -> `Foraging-#x#-#p-#f`)."""
    return re.sub(r"\d+", "#", re.sub(r"-v\d+$", "", registered_id))


@dataclass(frozen=True)
class SelectionRule:
    """Which envs a run takes, by rule (the `[refgen.select]` table)."""

    libraries: tuple[str, ...] = ("*",)
    """Catalog libraries to draw from; `"*"` = every library of the catalog."""
    exclude_libraries: tuple[str, ...] = ()
    """Libraries left out of `"*"` (with the reason in the config's comment)."""
    per_library: int = 250
    """K: at most this many envs per library (the paper's cap)."""
    select_seed: int = 0
    """Seed of the draw within each library (another seed, another pick by the same rule)."""
    min_envs: int = 0
    """Fill the pick up to this many envs: while it has fewer, each library with eligible envs
    over its cap gives one more (its next by the same draw), the libraries in an order drawn
    with the seed, round after round. 0: no filling."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "libraries", tuple(self.libraries))
        object.__setattr__(self, "exclude_libraries", tuple(self.exclude_libraries))
        if self.per_library < 1:
            raise RefGenError(
                f"[refgen.select] per_library must be >= 1 (got {self.per_library}); the "
                "paper's cap is 250"
            )
        if not self.libraries:
            raise RefGenError('[refgen.select] libraries is empty; name some or write ["*"]')
        if self.min_envs < 0:
            raise RefGenError(f"[refgen.select] min_envs must be >= 0 (got {self.min_envs})")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SelectionRule:
        return cls(**known_keys(cls, d, "[refgen.select]", RefGenError))


@dataclass(frozen=True)
class Exclusion:
    """One catalogued env the rule leaves out, and why."""

    env_id: str
    library: str
    reason: Reason
    detail: str = ""
    """The check's first problem, or the candidates' reasons, where there is one."""


@dataclass(frozen=True)
class Selection:
    """The envs a rule picked (qualified ids, by library) and every env it left out."""

    rule: SelectionRule
    picked: dict[str, tuple[str, ...]]
    """library -> its picked envs, sorted."""
    families: dict[str, str]
    """picked env -> its family."""
    excluded: tuple[Exclusion, ...] = field(default_factory=tuple)
    unpicked: dict[str, str] = field(default_factory=dict)
    """library of the rule -> why none of its envs is picked (e.g. gym-mtsim, whose step infos
    differ between two runs of one seed)."""

    @property
    def envs(self) -> list[str]:
        return [e for ids in self.picked.values() for e in ids]

    def exclusion_counts(self) -> dict[str, int]:
        """Reason -> how many envs it leaves out, most first."""
        return dict(Counter(x.reason for x in self.excluded).most_common())

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": {
                "libraries": list(self.rule.libraries),
                "exclude_libraries": list(self.rule.exclude_libraries),
                "per_library": self.rule.per_library,
                "select_seed": self.rule.select_seed,
            },
            "envs": len(self.envs),
            "libraries": len(self.picked),
            "picked": {lib: list(ids) for lib, ids in self.picked.items()},
            "families": self.families,
            "excluded_counts": self.exclusion_counts(),
            "unpicked_libraries": self.unpicked,
            "excluded": {
                x.env_id: x.reason + (f": {x.detail}" if x.detail else "") for x in self.excluded
            },
        }

    def lines(self) -> list[str]:
        """The pick and every exclusion, one line each (what `--dry-run` prints)."""
        out = [f"selection: {len(self.envs)} envs from {len(self.picked)} libraries "
               f"(per library <= {self.rule.per_library}, select_seed {self.rule.select_seed})"]  # fmt: skip
        for lib, ids in self.picked.items():
            fams = len({self.families[e] for e in ids})
            out.append(f"  {lib}: {len(ids)} envs, {fams} families: {', '.join(ids)}")
        for lib, why in self.unpicked.items():
            out.append(f"  {lib}: none picked ({why})")
        out.append(f"excluded: {len(self.excluded)} envs")
        for reason, n in self.exclusion_counts().items():
            out.append(f"  {n:5d}  {reason}")
        for x in self.excluded:
            out.append(f"  out  {x.env_id}: {x.reason}" + (f" ({x.detail})" if x.detail else ""))
        return out


def _libraries(rule: SelectionRule, catalog: dict[str, Any]) -> list[str]:
    names = sorted(catalog) if "*" in rule.libraries else list(rule.libraries)
    unknown = sorted(set(names) - set(catalog))
    if unknown:
        raise RefGenError(
            f"[refgen.select] libraries {unknown} are not in the catalog; known: {sorted(catalog)}"
        )
    return [n for n in names if n not in rule.exclude_libraries]


def _spread(ids: list[str], k: int, seed: int, library: str) -> list[str]:
    """At most k of `ids`, round-robin over their families (in a drawn order), drawn within
    each family with the seed (the library's name in the seed: libraries draw independently)."""
    rng = random.Random(f"{seed}:{library}")
    families: dict[str, list[str]] = {}
    for e in sorted(ids):
        families.setdefault(env_family(e.split("/", 1)[1]), []).append(e)
    order = sorted(families)
    rng.shuffle(order)
    for members in families.values():
        rng.shuffle(members)
    out: list[str] = []
    while len(out) < min(k, len(ids)):
        for fam in order:
            if families[fam] and len(out) < k:
                out.append(families[fam].pop())
    return out


def select_envs(rule: SelectionRule, pool: list[Candidate]) -> Selection:
    """Apply the rule to the catalog: every env of the rule's libraries is picked or excluded
    with a reason."""
    from ldm.envs.library.catalog import load_catalog
    from ldm.envs.library.registry import list_envs

    catalog = load_catalog()
    excluded: list[Exclusion] = []
    picked: dict[str, tuple[str, ...]] = {}
    unpicked: dict[str, str] = {}
    reserve: dict[str, list[str]] = {}  # each library's eligible envs over its cap, drawn order
    for lib in _libraries(rule, catalog):
        envs = list_envs(lib)
        if not envs:
            unpicked[lib] = f"no env catalogued; {len(catalog[lib].failed)} failed discovery"
            continue
        if not catalog[lib].installable:
            excluded += [Exclusion(e.id, lib, "library not installable") for e in envs]
            unpicked[lib] = "library not installable"
            continue
        eligible = []
        for e in envs:
            why = _ineligible(e, pool)
            if why is None:
                eligible.append(e.id)
            else:
                excluded.append(Exclusion(e.id, lib, *why))
        drawn = _spread(eligible, len(eligible), rule.select_seed, lib)  # the cap's first
        chosen, reserve[lib] = drawn[: rule.per_library], drawn[rule.per_library :]
        if chosen:
            picked[lib] = tuple(chosen)
        else:
            why = Counter(x.reason for x in excluded if x.library == lib)
            unpicked[lib] = "every env out: " + ", ".join(f"{n} {r}" for r, n in why.items())
    _fill(picked, reserve, rule)
    for lib, rest in reserve.items():
        excluded += [Exclusion(e, lib, "over the per-library cap") for e in rest]
    picked = {lib: tuple(sorted(ids)) for lib, ids in picked.items()}
    families = {e: env_family(e.split("/", 1)[1]) for ids in picked.values() for e in ids}
    return Selection(rule, picked, families, tuple(excluded), unpicked)


def _fill(picked: dict[str, tuple[str, ...]], reserve: dict[str, list[str]],
          rule: SelectionRule) -> None:  # fmt: skip
    """`min_envs`: one more env from each library with a reserve, round after round (the
    libraries in an order drawn with the seed), until the pick has `min_envs`."""
    order = sorted(lib for lib, rest in reserve.items() if rest)
    random.Random(f"{rule.select_seed}:fill").shuffle(order)
    total = sum(len(ids) for ids in picked.values())
    while total < rule.min_envs and any(reserve[lib] for lib in order):
        for lib in order:
            if reserve[lib] and total < rule.min_envs:
                picked[lib] = (*picked.get(lib, ()), reserve[lib].pop(0))
                total += 1


def _ineligible(env: Any, pool: list[Candidate]) -> tuple[Reason, str] | None:
    """Why a catalogued env (`EnvInfo`) cannot be picked, or None."""
    if not env.checked or env.observation is None or env.action is None:
        return "never checked", ""
    if not env.check_ok:
        return problem_reason(env.problems), env.problems[0][:120]
    verdicts = [c.compatible(env.observation, env.action) for c in pool]
    if not any(ok for ok, _ in verdicts):
        return "no candidate runs on its spaces", "; ".join(sorted({why for _, why in verdicts}))
    return None
