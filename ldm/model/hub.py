"""`ldm push CHECKPOINT REPO_ID`: publish a saved model to the Hugging Face Hub.

A checkpoint folder (`save_pretrained`'s: config.json, model.safetensors and the README.md
model card, ldm/model/card.py) is uploaded as it is by `huggingface_hub.HfApi`: the repo is
created if it does not exist, and only the checkpoint's own files go up (a training folder's
other files stay). `LDMPolicy.from_pretrained("owner/name")` and `ldm play owner/name ENV`
load it back.

Imports tyro, ldm.model.card and ldm.errors, huggingface_hub inside `push`; not torch (the
folder is checked by its files, not loaded).
"""

from __future__ import annotations

import json
from pathlib import Path

import tyro

from ldm.errors import ModelError
from ldm.model.card import CHECKPOINT_FILES, HUB_ID


def checkpoint_folder(checkpoint: str | Path) -> Path:
    """The folder, checked to be a saved LDM checkpoint (ModelError naming what is missing)."""
    d = Path(checkpoint)
    missing = [f for f in CHECKPOINT_FILES if not (d / f).is_file()]
    if missing:
        raise ModelError(
            f"{d} is not a saved LDM model: {', '.join(missing)} missing (push a folder "
            "written by save_pretrained, e.g. runs/quickstart/train/final)"
        )
    try:
        json.loads((d / "config.json").read_text())["config"]
    except (json.JSONDecodeError, KeyError) as e:
        raise ModelError(f"{d}/config.json is not an LDM checkpoint's ({e})") from None
    return d


def push(
    checkpoint: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a checkpoint folder to the Hub model repo `repo_id` (created if absent); returns
    the repo's URL. Errors (no login, no network, no rights) are ModelErrors saying the fix."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    d = checkpoint_folder(checkpoint)
    if not HUB_ID.match(repo_id):
        raise ModelError(f"{repo_id!r} is not a Hub repo id; give owner/name (e.g. me/ldm-32m)")
    api = HfApi()
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(d),
            repo_type="model",
            revision=revision,
            allow_patterns=list(CHECKPOINT_FILES),
            commit_message=commit_message or f"ldm push {d}",
        )
    except LocalTokenNotFoundError:
        raise ModelError(
            "not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN"
        ) from None
    except (HfHubHTTPError, OSError) as e:
        raise ModelError(
            f"pushing {d} to {repo_id} failed ({type(e).__name__}: {str(e).splitlines()[0]}); "
            "check the network, HF_HUB_OFFLINE, and that your token may write to that repo"
        ) from None
    return str(url)


def main(
    checkpoint: tyro.conf.Positional[str],
    repo_id: tyro.conf.Positional[str],
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
) -> int:
    """Publish a saved model (config.json, model.safetensors, its model card) to the Hub.

    Args:
        checkpoint: A checkpoint folder (e.g. runs/quickstart/train/final).
        repo_id: The Hub model repo, owner/name (created if it does not exist).
        private: Create the repo private.
        revision: Branch to push to (default: main).
        message: Commit message.
    """
    url = push(checkpoint, repo_id, private=private, revision=revision, commit_message=message)
    print(f"pushed {checkpoint} to {url}")
    print(f'load it with LDMPolicy.from_pretrained("{repo_id}") or `ldm play {repo_id} ENV_ID`')
    return 0
