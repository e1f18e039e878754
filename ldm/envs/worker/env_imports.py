"""How a worker (and the discovery probe) imports what a library spec names: `import_name`
for `module`, `module:function`, `module:function('literal', ...)` and `module:EnvClass`, and
`register_class`, which registers an env class the library leaves unregistered.

Imports: standard library only, and gym/gymnasium's registration when a class is registered
(runs in each library's own venv, Python 3.6; ldm/envs/library/probe.py loads it too).
"""

import ast
import importlib
import inspect


def import_name(name):
    """Import `module`, or `module:function` (a `gym.envs` entry point or a registration
    function, which is then called), or `module:function('gymnasium')` (called with those
    literal arguments: gym-classics' `register('gymnasium')`), or `module:EnvClass` (an env
    class the library does not register: registered as `EnvClass-v0`)."""
    module, _, attr = name.partition(":")
    obj = importlib.import_module(module)
    if attr:
        attr, _, args = attr.partition("(")
        for part in attr.split("."):
            obj = getattr(obj, part)
        if inspect.isclass(obj):
            register_class(obj)
            return
        args = args[:-1].strip() if args.endswith(")") else args.strip()
        obj(*(ast.literal_eval("(" + args + ",)") if args else ()))


def register_class(cls):
    """Register an env class under `<Class>-v0` with the gym generation it subclasses."""
    gymnasium_based = any(c.__module__.split(".")[0] == "gymnasium" for c in cls.__mro__)
    registration = importlib.import_module(
        ("gymnasium" if gymnasium_based else "gym") + ".envs.registration"
    )
    env_id = cls.__name__ + "-v0"
    registry = getattr(registration.registry, "env_specs", registration.registry)
    if env_id not in registry:
        registration.register(id=env_id, entry_point="%s:%s" % (cls.__module__, cls.__name__))
