"""Config: matterport defaults, derived values, validation, display and the JSON round trip."""

import json

import numpy as np
import pytest

from ra2 import Ra2Error
from ra2.mrcnn.config import Config


class GrayConfig(Config):
    NAME = "gray"
    NUM_CLASSES = 1 + 3
    IMAGES_PER_GPU = 4
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 256
    IMAGE_CHANNEL_COUNT = 1
    MEAN_PIXEL = [110.0]
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)


def shape_fn(image_shape):  # module level so the config can name it in JSON
    return np.array([[image_shape[0] // 4, image_shape[1] // 4]])


def test_matterport_defaults():
    c = Config()
    assert c.NAME is None and c.BACKBONE == "resnet101" and c.NUM_CLASSES == 1
    assert c.BACKBONE_STRIDES == [4, 8, 16, 32, 64]
    assert tuple(c.RPN_ANCHOR_SCALES) == (32, 64, 128, 256, 512)
    assert c.IMAGE_MIN_DIM == 800 and c.IMAGE_MAX_DIM == 1024 and c.IMAGE_RESIZE_MODE == "square"
    assert c.TRAIN_ROIS_PER_IMAGE == 200 and c.DETECTION_MIN_CONFIDENCE == 0.7
    assert c.MASK_SHAPE == [28, 28] and c.LEARNING_RATE == 0.001 and c.GRADIENT_CLIP_NORM == 5.0
    assert c.LOSS_WEIGHTS["mrcnn_mask_loss"] == 1.0 and len(c.LOSS_WEIGHTS) == 5


def test_derived_values():
    c = Config()
    assert c.BATCH_SIZE == 2
    assert c.IMAGE_SHAPE == [1024, 1024, 3]
    assert c.IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 1
    g = GrayConfig()
    assert g.BATCH_SIZE == 4
    assert g.IMAGE_SHAPE == [256, 256, 1]
    assert g.IMAGE_META_SIZE == 12 + 4

    class CropConfig(Config):
        IMAGE_RESIZE_MODE = "crop"
        IMAGE_MIN_DIM = 512

    assert CropConfig().IMAGE_SHAPE == [512, 512, 3]


def test_mean_pixel_must_match_channels():
    class Bad(Config):
        IMAGE_CHANNEL_COUNT = 1  # MEAN_PIXEL left at the 3 RGB values

    with pytest.raises(ValueError, match="MEAN_PIXEL.*IMAGE_CHANNEL_COUNT"):
        Bad()


def test_other_validation():
    class BadMode(Config):
        IMAGE_RESIZE_MODE = "stretch"

    class BadBackbone(Config):
        BACKBONE = 50

    class BadScales(Config):
        RPN_ANCHOR_SCALES = (32, 64)

    for cls, pattern in ((BadMode, "IMAGE_RESIZE_MODE"), (BadBackbone, "BACKBONE"), (BadScales, "RPN_ANCHOR_SCALES")):
        with pytest.raises(ValueError, match=pattern):
            cls()


def test_display_lists_every_attribute(capsys):
    g = GrayConfig()
    text = g.to_text()
    for name in ("NAME", "NUM_CLASSES", "IMAGE_SHAPE", "MEAN_PIXEL", "LOSS_WEIGHTS", "BATCH_SIZE"):
        assert any(line.split()[0] == name for line in text.splitlines()[1:])
    assert "display" not in text and "to_dict" not in text
    g.display()
    assert capsys.readouterr().out.strip() == text.strip()


def test_json_round_trip(tmp_path):
    g = GrayConfig()
    path = tmp_path / "run" / "config.json"
    g.to_json(path)
    raw = json.loads(path.read_text())
    assert raw["RPN_ANCHOR_SCALES"] == [8, 16, 32, 64, 128]  # tuples normalised to lists
    assert raw["IMAGE_SHAPE"] == [256, 256, 1]
    back = Config.from_json(path)
    assert back.to_dict() == g.to_dict()
    assert back == g
    assert back.NAME == "gray" and back.IMAGE_CHANNEL_COUNT == 1 and back.BATCH_SIZE == 4
    # Derived values are recomputed, not trusted from the file.
    raw["IMAGES_PER_GPU"] = 1
    raw["BATCH_SIZE"] = 99
    assert Config.from_dict(raw).BATCH_SIZE == 1


def test_callable_round_trip(tmp_path):
    class Custom(Config):
        COMPUTE_BACKBONE_SHAPE = staticmethod(shape_fn)

    c = Custom()
    d = c.to_dict()
    assert d["COMPUTE_BACKBONE_SHAPE"] == {"__callable__": f"{__name__}:shape_fn"}
    c.to_json(tmp_path / "c.json")
    back = Config.from_json(tmp_path / "c.json")
    assert back.COMPUTE_BACKBONE_SHAPE is shape_fn


def test_from_json_errors_name_the_file(tmp_path):
    with pytest.raises(Ra2Error, match="missing.json"):
        Config.from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(Ra2Error, match="bad.json"):
        Config.from_json(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"IMAGE_CHANNEL_COUNT": 1}))
    with pytest.raises(Ra2Error, match="wrong.json.*MEAN_PIXEL"):
        Config.from_json(wrong)


def test_package_import_is_light():
    """``import ra2.mrcnn`` and its NumPy modules never import TensorFlow; MaskRCNN is lazy."""
    import subprocess
    import sys

    code = (
        "import sys, ra2.mrcnn\n"
        "from ra2.mrcnn import config, utils, data, shapes, visualize, legacy_weights\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'\n"
        "assert ra2.mrcnn.Config is config.Config and ra2.mrcnn.Dataset is utils.Dataset\n"
        "try:\n    ra2.mrcnn.NoSuchThing\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit('no error')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
