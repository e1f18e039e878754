"""Stand-in for torchvision inside the growspace venv (Python 3.8), put on its path by the spec.

growspace imports torchvision at package import, but uses it only in its MNIST "spotlight"
envs (`datasets.MNIST('./data', download=True)`). PyPI has no CPU-only torchvision/torch for
Python 3.8 (its Linux wheels pull the multi-GB CUDA build), and those envs download MNIST at
run time, which an air-gapped machine cannot do. So the spec excludes the
GrowSpaceSpotlight-* envs and this module lets the package import; anything that reaches
`datasets.MNIST` gets an ImportError that says why. Nothing else of torchvision is provided.

Imports: the standard library only. Must not import torch or ldm (neither is in that venv).
"""

WHY = (
    "torchvision is not installed in the growspace venv (no CPU wheel for Python 3.8 on PyPI); "
    "growspace's MNIST envs (GrowSpaceSpotlight-*) are excluded from the catalog. To use them, "
    "add a torchvision requirement to ldm/envs/catalog/growspace.toml and drop this stand-in "
    "from its python_path."
)


class _Datasets:
    def __getattr__(self, name):
        raise ImportError("torchvision.datasets.%s: %s" % (name, WHY))


datasets = _Datasets()
__version__ = "0+ldm-stand-in"
