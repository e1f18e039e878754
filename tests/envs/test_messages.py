"""ldm/envs/transport/messages.py: every message the client writes names a worker command and only
arguments that command takes (a misspelt key fails here, not in a worker)."""

import inspect
from types import SimpleNamespace

import pytest

from ldm.envs.transport import messages
from ldm.envs.worker.server import COMMANDS, EnvServer

SPEC = SimpleNamespace(api="gym", imports=["m"], wrappers=["sum_reward"], path="/c/x.toml",
                       python_path=["src"])  # fmt: skip
EXAMPLES = {
    "init": lambda: messages.init(SPEC),
    "list_ids": messages.list_ids,
    "make": lambda: messages.make("A-v0", {"k": 1}, 2),
    "reset": lambda: messages.reset([0, 1], [3, None]),
    "step": lambda: messages.step([0, 1], [1, 0], autoreset=True),
    "render": lambda: messages.render([0], 64),
    "close": messages.close,
    "shm_attach": lambda: messages.shm_attach([], 64, fd=5, poll_us=0, poll_shares_core=False),
}


def test_there_is_one_constructor_per_worker_command():
    assert set(EXAMPLES) == set(COMMANDS)


@pytest.mark.parametrize("cmd", sorted(EXAMPLES))
def test_a_message_takes_only_its_commands_arguments(cmd):
    message = EXAMPLES[cmd]()
    assert message["cmd"] == cmd
    takes = set(inspect.signature(getattr(EnvServer(), cmd)).parameters)
    assert set(message) - {"cmd"} <= takes, (cmd, set(message) - {"cmd"} - takes)


def test_init_finds_python_path_beside_the_spec_unless_told():
    assert messages.init(SPEC)["paths"] == ["/c/src"]
    assert messages.init(SPEC, ["/w/src"])["paths"] == ["/w/src"]
    assert messages.close() == {"cmd": "close", "handles": None}  # the worker exits on this
