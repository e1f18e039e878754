"""ldm.atomic: a failed write leaves the old file and no temporary file behind."""

import json

import pytest

from ldm.atomic import atomic_path, write_json_atomic, write_text_atomic


def test_json_written_with_its_indent_and_no_temp_left(tmp_path):
    path = tmp_path / "sub" / "x.json"
    write_json_atomic(path, {"a": [1, 2]}, indent=2)
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert path.read_text() == json.dumps({"a": [1, 2]}, indent=2)
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path):
    path = tmp_path / "x.txt"
    write_text_atomic(path, "old")
    with pytest.raises(TypeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise TypeError("writer died")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_a_file_takes_the_users_umask_not_0600(tmp_path, mask, mode):
    import os
    import stat

    old = os.umask(mask)
    try:
        write_json_atomic(tmp_path / "results.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == mode
