"""The worker side of the hub: code that runs inside each library's own interpreter.

Everything in this folder is started as `python server.py` (process, sandbox and Ray
backends; the sandbox exposes only this folder), copied into each Docker image, or imported
as `ldm.envs.worker.*` by the in-process backend and the client (which shares the wire
protocol, the declared wrappers' names and the shared-memory signals with it):

- `server.py`: `EnvServer` and `serve`, the script's one loop (one worker process, many envs);
- `channel.py`: the worker's end of the wire (messages and signals in, replies and signals out);
- `env_instance.py`: one env (legacy conversion, space descriptions, declared wrappers,
  frames) and how a wire action is cast for it;
- `env_imports.py`: what a spec's `imports` name (also loaded by ldm/envs/library/probe.py);
- `protocol.py`: the wire format (framed JSON + raw array bytes, one-byte signals between frames);
- `space_desc.py`: the wire's space descriptions, their one home (what a space is, sent to the
  client; read by the wrappers, legacy.py and the shared buffer's layout);
- `wrappers.py`: the registry of declared wrappers (`WRAPPERS`, `apply`), which live in
  `obs_wrappers.py` (observations into the paper's limits), `team_wrappers.py` (teams,
  multi-part rewards) and `episode_wrappers.py` (seeds, FIRE, the step limit) over the base
  classes of `wrapper_base.py`;
- `legacy.py`: every `gym` generation's API -> Gymnasium's 5-tuple API;
- `shm_worker.py`: the worker's end of the shared-memory step path;
- `poll.py`: poll-before-block wake-ups of that path (both sides use it).

Must not import: anything outside this folder but the standard library, numpy and
gym/gymnasium (ldm is not installed in a library's venv), and no syntax newer than Python 3.6
(tests/envs/test_worker_compat.py compiles every file here on the oldest catalogued Python).
This file is never run in a library's venv (scripts there import their siblings directly).
"""
