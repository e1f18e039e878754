"""Process-tree helpers for the tests that check nothing outlives a client or a run (/proc)."""

import os
from pathlib import Path


def children() -> dict[int, list[int]]:
    """Parent pid -> its child pids, read from /proc."""
    tree: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(p.name))
    return tree


def descendants(*roots: int) -> set[int]:
    """Every process below the roots (the roots too when given as more than one)."""
    tree, found, todo = children(), set(), list(roots)
    while todo:
        for c in tree.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def shm_semaphores(pids) -> set[str]:
    """The POSIX named semaphores (`/dev/shm/sem.*`) the processes have mapped: the ones a
    multiprocessing pool (spawn) created; they outlive a process unless someone unlinks them."""
    found = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        found.update(line.split()[-1] for line in maps.splitlines() if "/dev/shm/sem." in line)
    return found
