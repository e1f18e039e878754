"""The hub's library side: what ldm knows about each environment library.

- `catalog.py`: the library specs (`LibrarySpec`, the TOML files of ldm/envs/catalog/);
- `registry.py`: env ids and their recorded spaces (`list_envs`, `resolve_env_id`);
- `venvs.py`: each library's own virtual environment, `sources.py`: where its code comes from;
- `probe.py`, `probe_docs.py`, `probe_envs.py`: the discovery probe (a script run by the
  library's interpreter) and what it reads;
- `trial.py` (one env made and stepped in a fresh worker), `check.py` (`ldm envs check`:
  Gymnasium's checks through the hub) and `discover/` (`ldm envs discover`).

`catalog`, `registry`, `venvs` and `sources` import no transport (the transport imports
them); `trial`, `check` and `discover` drive workers through the transport and the front
door. None imports torch or an environment library. The package itself imports nothing:
each module is imported by its name.
"""
