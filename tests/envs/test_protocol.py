"""The wire protocol: what goes in comes out (arrays bit-exact), and a corrupted stream is an error."""

import io
import math
import os

import numpy as np
import pytest

from ldm.envs.worker import protocol


def roundtrip(message):
    return protocol.read_message(io.BytesIO(protocol.dumps(message)))


def test_arrays_scalars_and_nesting_round_trip_exactly():
    rng = np.random.default_rng(0)
    msg = {
        "obs": rng.normal(size=(8, 4)).astype(np.float32),
        "img": rng.integers(0, 255, (2, 64, 64, 3), dtype=np.uint8),
        "empty": np.zeros((0, 3), np.int16),
        "nested": [{"a": np.arange(5, dtype=np.int64)}, (1, 2.5, "x", None, True)],
        "scalars": [np.float32(1.5), np.int64(7), np.bool_(True)],
        "bigendian": np.arange(3, dtype=">f8"),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    }
    out = roundtrip(msg)
    for key in ("obs", "img", "empty", "bigendian", "fortran"):
        assert out[key].dtype == msg[key].dtype and out[key].shape == msg[key].shape
        np.testing.assert_array_equal(out[key], msg[key])
    assert out["img"].flags.writeable  # a copy the caller may modify
    np.testing.assert_array_equal(out["nested"][0]["a"], np.arange(5))
    assert out["nested"][1] == [1, 2.5, "x", None, True]
    assert out["scalars"] == [1.5, 7, True] and type(out["scalars"][1]) is int


def test_non_json_values_survive_as_documented():
    out = roundtrip(
        {
            "nan": float("nan"),
            "inf": [float("inf"), -math.inf],
            "obj": object(),
            "keys": {(1, 2): "tuple key", 3: "int key"},
            "objarr": np.array([1, "a", None], dtype=object),
            "cplx": np.complex64(1 + 2j),
        }
    )
    assert math.isnan(out["nan"]) and out["inf"] == [math.inf, -math.inf]
    # a default repr arrives without its memory address: two runs of one seed send the same
    assert out["obj"] == "<object object>"
    assert roundtrip({"o": object()}) == roundtrip({"o": object()})
    assert out["keys"] == {"(1, 2)": "tuple key", "3": "int key"}
    assert out["objarr"] == [1, "a", None]
    assert out["cplx"].startswith("np.complex64") or "1+2j" in out["cplx"]


def test_frame_reader_handles_partial_frames_timeouts_and_corruption():
    r, w = os.pipe()
    try:
        reader = protocol.FrameReader(r)
        assert reader.read_message(timeout=0.05) is None  # nothing yet
        frame = protocol.dumps({"x": np.arange(1000, dtype=np.float64)})
        os.write(w, frame[:10])
        assert reader.read_message(timeout=0.05) is None  # half a frame: wait for the rest
        os.write(w, frame[10:] + frame)
        for _ in range(2):
            np.testing.assert_array_equal(reader.read_message(timeout=1)["x"], np.arange(1000))
        os.write(w, b"\xff" * 16)
        with pytest.raises(ValueError, match="over the limit"):
            reader.read_message(timeout=1)
    finally:
        os.close(w)
        os.close(r)
    with pytest.raises(EOFError):
        protocol.read_message(io.BytesIO(frame[:-3]))


def test_a_signal_between_frames_is_told_from_a_frame_by_its_first_byte():
    r, w = os.pipe()
    try:
        reader = protocol.FrameReader(r)
        frame = protocol.dumps({"cmd": "reset", "x": np.arange(3)})
        assert frame[0] == 0  # the high byte of the header length
        os.write(w, b"s" + frame[:5])
        assert reader.read_next(timeout=1) == b"s"
        assert reader.read_next(timeout=0.05) is None  # a partial frame: wait for the rest
        os.write(w, frame[5:] + b".")
        message = reader.read_next(timeout=1)
        assert message["cmd"] == "reset" and message["x"].tolist() == [0, 1, 2]
        assert reader.read_next(timeout=1) == b"."
        assert reader.read_next(timeout=0.05) is None
        os.close(w)
        w = -1
        with pytest.raises(EOFError):
            reader.read_next(timeout=1)
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)
