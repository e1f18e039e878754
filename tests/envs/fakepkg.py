"""A small pip-installable distribution written on disk, for the tests that discover one
(`ldm envs discover` installs it into a venv of its own from a `name @ file://` requirement)."""

from pathlib import Path


def fake_distribution(root: Path, name: str, modules: dict[str, str], readme: str = "") -> str:
    """Write distribution `name` under `root/name`: one package (`name` with `_` for `-`)
    holding `modules` (file name -> source), setuptools' pyproject.toml depending on gymnasium
    and numpy, and `readme` as its README.md where given. Returns the requirement for it."""
    d = root / name
    package = name.replace("-", "_")
    (d / package).mkdir(parents=True)
    for file, source in modules.items():
        (d / package / file).write_text(source)
    if readme:
        (d / "README.md").write_text(readme)
    readme_line = 'readme = "README.md"\n' if readme else ""
    (d / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["setuptools>=61"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        "[project]\n"
        f'name = "{name}"\n'
        'version = "0.1.0"\n'
        f"{readme_line}"
        'dependencies = ["gymnasium>=0.29", "numpy"]\n\n'
        "[tool.setuptools]\n"
        f'packages = ["{package}"]\n'
    )
    return f"{name} @ {d.as_uri()}"
