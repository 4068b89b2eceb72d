"""Training data folders of pictures (PNG, JPEG...) read with Pillow: channels by the input,
values / 255, masks as class ids, sizes checked from the header, clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

import spdnn
from spdnn.backends.torch_exporter.training.image_folder import read_image_folder
from spdnn.system.spec import Port

GREY = Port((1, 4, 6))
RGB = Port((3, 4, 6))
LABEL = Port((), "int64")


def picture(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return array


def test_class_subfolders_of_png_and_jpeg_pictures(tmp_path):
    rng = np.random.default_rng(0)
    cat = picture(tmp_path / "cat" / "a.png", rng.integers(0, 256, (4, 6, 3), dtype=np.uint8))
    dog = picture(tmp_path / "dog" / "b.png", rng.integers(0, 256, (4, 6, 3), dtype=np.uint8))
    arrays = read_image_folder(tmp_path, RGB, LABEL)
    assert arrays["x"].shape == (2, 3, 4, 6) and arrays["x"].dtype == np.float32
    np.testing.assert_allclose(arrays["x"][0], cat.transpose(2, 0, 1) / 255, atol=1e-7)
    np.testing.assert_allclose(arrays["x"][1], dog.transpose(2, 0, 1) / 255, atol=1e-7)
    assert arrays["y"].tolist() == [0, 1]
    picture(tmp_path / "dog" / "c.jpg", np.full((4, 6, 3), 200, np.uint8))  # JPEG is lossy: a flat colour
    assert read_image_folder(tmp_path, RGB, LABEL)["x"][2].mean() == pytest.approx(200 / 255, abs=2 / 255)


def test_colour_pictures_become_grey_for_a_one_channel_input_and_masks_are_class_ids(tmp_path):
    picture(tmp_path / "images" / "a.png", np.full((4, 6, 3), 255, np.uint8))
    mask = picture(tmp_path / "masks" / "a.png", np.arange(24, dtype=np.uint8).reshape(4, 6) % 3)
    arrays = read_image_folder(tmp_path, GREY, Port((4, 6), "int64"))
    assert arrays["x"].shape == (1, 1, 4, 6) and np.allclose(arrays["x"], 1.0)
    assert arrays["y"].dtype == np.int64 and arrays["y"][0].tolist() == mask.tolist()


@pytest.mark.parametrize("write,message", [
    (lambda p: picture(p, np.zeros((5, 6), np.uint8)), "picture of 5x6 pixels (height x width), expected 4x6; "
                                                        "spdnn does not resize"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20), "not a readable picture"),
    (lambda p: p.write_bytes(b"not a picture at all"), "not a readable picture"),
])
def test_bad_pictures_are_errors_naming_the_file(tmp_path, write, message):
    (tmp_path / "cls").mkdir()
    write(tmp_path / "cls" / "x.png")
    with pytest.raises(spdnn.SpdnnError, match="x.png") as e:
        read_image_folder(tmp_path, GREY, LABEL)
    assert message in str(e.value)


def test_a_huge_picture_is_refused_from_its_header(tmp_path):
    # A 5000 x 5000 grey PNG of zeros is a few kB on disk; it is refused before it is decoded.
    path = tmp_path / "cls" / "big.png"
    path.parent.mkdir()
    Image.new("L", (5000, 5000)).save(path)
    with pytest.raises(spdnn.SpdnnError, match="picture of 5000x5000 pixels"):
        read_image_folder(tmp_path, GREY, LABEL)


def test_without_pillow_pictures_get_an_install_hint(tmp_path, monkeypatch):
    picture(tmp_path / "cls" / "a.png", np.zeros((4, 6), np.uint8))
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(spdnn.SpdnnError, match=r'pictures are read with Pillow, which is not installed: '
                                               r'pip install "spdnn\[images\]"'):
        read_image_folder(tmp_path, GREY, LABEL)
