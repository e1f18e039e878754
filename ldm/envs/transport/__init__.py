"""The hub's transport: how a client reaches an env worker and steps its envs.

- connections (`connection.py`: the interface, `WorkerError`, the in-process kind;
  `process.py`: the worker script as a subprocess) and `backends.py` (which connection a
  backend gets: inprocess, process, ray, docker);
- the messages to a worker (`messages.py`) and the step path (`steps.py`: the step handle and
  its records; `shm.py`, `shm_layout.py`, `shm_buffer.py`: the shared-memory handle, its
  layout and its buffer);
- the other transports and their rooms: `sandbox.py` (bubblewrap and limits), `docker.py`,
  `ray_backend.py`; `lifetime.py` (every worker closed at exit), `scratch.py` (a worker's
  scratch directory), `workerenv.py` (its environment variables).

Imports the library side's `catalog` (the spec) and `venvs` (its interpreter) and the
worker's protocol, shm_worker, poll and space_desc; must not import the front door
(`ldm.envs`' proxies, vector env, SB3), gymnasium, an environment library or torch. The
package itself imports nothing: each module is imported by its name.
"""
