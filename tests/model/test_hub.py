"""`ldm push` (ldm/model/hub.py) without a network: the folder it uploads and the calls it
makes to huggingface_hub's HfApi, whose methods are replaced by recorders."""

import fnmatch

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import LocalTokenNotFoundError

from ldm.cli import main
from ldm.model import LDMPolicy, preset


@pytest.fixture
def hub_calls(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a call that escaped the recorders would fail
    calls = []

    def create_repo(self, repo_id, **kw):
        calls.append(("create_repo", repo_id, kw))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kw):
        calls.append(("upload_folder", kw["repo_id"], kw))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_uploads_the_checkpoint_files_of_the_folder(tmp_path, hub_calls, capsys):
    ck = LDMPolicy(preset("ldm-tiny")).save_pretrained(tmp_path / "final")
    (ck / "optimizer.pt").write_bytes(b"training state, not for the Hub")
    assert main(["push", str(ck), "me/ldm-tiny", "--private", "--message", "first"]) == 0
    assert "pushed" in capsys.readouterr().out
    (_, repo, create), (_, repo2, upload) = hub_calls
    assert repo == repo2 == "me/ldm-tiny"
    assert create == {"repo_type": "model", "private": True, "exist_ok": True}
    assert upload["folder_path"] == str(ck) and upload["repo_type"] == "model"
    assert upload["commit_message"] == "first"
    sent = sorted(
        p.name
        for p in ck.iterdir()
        if any(fnmatch.fnmatch(p.name, g) for g in upload["allow_patterns"])
    )
    assert sent == ["README.md", "config.json", "model.safetensors"]  # the card goes with it
    assert (ck / "README.md").read_text().startswith("---\n")


def test_push_errors_name_the_fix(tmp_path, hub_calls, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    assert main(["push", str(tmp_path / "empty"), "me/x"]) == 1
    assert "config.json, model.safetensors, README.md missing" in capsys.readouterr().err
    ck = LDMPolicy(preset("ldm-tiny")).save_pretrained(tmp_path / "final")
    assert main(["push", str(ck), "no-owner"]) == 1
    assert "give owner/name" in capsys.readouterr().err
    assert hub_calls == []  # nothing was sent for either

    def no_token(self, repo_id, **kw):
        raise LocalTokenNotFoundError("Token is required")

    monkeypatch.setattr(HfApi, "create_repo", no_token)
    assert main(["push", str(ck), "me/x"]) == 1
    assert "hf auth login" in capsys.readouterr().err
