"""The `ldm` command line: one subcommand group per pipeline stage.

Each stage owns `ldm/<stage>/cli.py` with a `COMMANDS` dict (name -> function whose typed,
documented parameters tyro turns into flags). Groups are imported lazily so that
`ldm envs list` never imports torch. A group may instead expose a single function `main`
(e.g. `ldm run`), called with the remaining arguments, or `run_cli(prog, args)` where it
parses them itself (`ldm train`: a --config file's settings under its flags).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# group name -> (module, one-line help). Data, not an if/elif chain.
GROUPS: dict[str, tuple[str, str]] = {
    "envs": ("ldm.envs.cli", "environment hub: list, check, discover, setup libraries"),
    "model": ("ldm.model.cli", "model presets: summary"),
    "data": ("ldm.data.cli", "trajectory store: stats, verify, Minari import/export"),
    "refgen": ("ldm.refgen.cli", "reference policies: rank, train, relabel, curate, all"),
    "train": ("ldm.pipeline.train_cli", "train an LDM policy on a store"),
    "finetune": ("ldm.pipeline.finetune_cli", "fine-tune an LDM on K episodes (full or LoRA)"),
    "scale": ("ldm.pipeline.scale_cli", "scaling study over presets"),
    "eval": ("ldm.eval.cli", "evaluate a checkpoint by the paper's protocol"),
    "play": ("ldm.eval.play", "watch a trained LDM act in any env (returns, a clip)"),
    "push": ("ldm.model.hub", "publish a trained model to the Hugging Face Hub"),
    "run": ("ldm.pipeline.cli", "run the whole pipeline from a TOML config"),
    "status": ("ldm.pipeline.status_cli", "show where a pipeline stands"),
}


def _usage() -> str:
    lines = ["usage: ldm <command> [args...]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in GROUPS.items()]
    lines += [
        "",
        "--version  print ldm's version (and commit, in a source checkout)",
        "option of every command: --catalog-dir DIR  read library specs from DIR too (before the",
        "  built-in catalog; same as adding DIR to $LDM_CATALOG_PATH); discover writes there",
    ]
    return "\n".join(lines)


def take_catalog_dirs(args: list[str]) -> list[str]:
    """Remove every `--catalog-dir DIR` (or `--catalog-dir=DIR`) from `args` and prepend the
    directories to $LDM_CATALOG_PATH, so that every command (and every process it starts)
    reads them before the built-in catalog; returns the remaining arguments."""
    rest, dirs = [], []
    it = iter(args)
    for a in it:
        if a == "--catalog-dir":
            value = next(it, None)
            if value is None:
                raise SystemExit("ldm: --catalog-dir needs a directory")
            dirs.append(value)
        elif a.startswith("--catalog-dir="):
            dirs.append(a.split("=", 1)[1])
        else:
            rest.append(a)
    if dirs:  # the catalog imported only here: `ldm --help` imports no numpy
        from ldm.envs.library.catalog import CATALOG_PATH_ENV, load_catalog

        old = os.environ.get(CATALOG_PATH_ENV)
        os.environ[CATALOG_PATH_ENV] = os.pathsep.join(
            [str(Path(d).resolve()) for d in dirs] + ([old] if old else [])
        )
        load_catalog.cache_clear()
    return rest


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ldm` script."""
    args = take_catalog_dirs(list(sys.argv[1:] if argv is None else argv))
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from ldm.version import describe

        print(describe())
        return 0
    name = args[0]
    if name not in GROUPS:
        print(f"ldm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    import tyro  # here: --help and --version need none of it

    from ldm.errors import LDMError

    try:
        module = importlib.import_module(GROUPS[name][0])
    except ModuleNotFoundError as e:
        print(f"ldm {name}: not available in this version ({e})", file=sys.stderr)
        return 2
    _sigterm_as_interrupt()
    try:
        if hasattr(module, "run_cli"):  # a command that parses its flags itself
            result = module.run_cli(f"ldm {name}", args[1:])
        elif hasattr(module, "COMMANDS"):
            result = tyro.extras.subcommand_cli_from_dict(
                module.COMMANDS, prog=f"ldm {name}", args=args[1:], sort_subcommands=False
            )
        else:
            result = tyro.cli(module.main, prog=f"ldm {name}", args=args[1:])
    except LDMError as e:
        print(f"ldm {name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C: finished work is kept; say how to go on
        print(f"\nldm {name}: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
    return int(result) if isinstance(result, int) else 0


def _sigterm_as_interrupt() -> None:
    """SIGTERM (kill, a cluster's scheduler) stops a command like Ctrl-C: its clean-up runs
    (job processes stopped, partial files removed) and it says where the work stands."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        # a SIGTERM to the whole process group (a scheduler's stop) also ends torch's
        # DataLoader workers, and torch's SIGCHLD handler would then replace this clean
        # interrupt with "DataLoader worker ... is killed by signal: Terminated"
        with contextlib.suppress(ValueError, AttributeError):
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        raise KeyboardInterrupt("terminated (SIGTERM)")

    with contextlib.suppress(ValueError):  # not the main thread (an embedding application)
        signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())
