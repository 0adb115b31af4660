"""Synthetic shapes (matterport's ``samples/shapes`` idea), seeded, for tests and benchmarks.

Each image is a flat background with 1 to 3 shapes (square, circle, triangle) of random size,
position and colour; later shapes occlude earlier ones. Everything is drawn on the fly from a
small per-image description, so a data set of any size costs no memory and no files, and the
same seed always gives the same images.

A grayscale variant (``channels=1``) draws intensities instead of colours, as radiographs are
grayscale; shapes always differ from the background by at least ``min_contrast`` grey levels (in
every channel's maximum difference for colour images) so they are visible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ra2.mrcnn import utils
from ra2.mrcnn.config import Config

#: Class names in id order (id 0 is the background).
SHAPE_NAMES = ("square", "circle", "triangle")


class ShapesConfig(Config):
    """A CPU-sized configuration for the shapes data set (64 x 64 RGB images, 3 classes).

    Smaller than matterport's (128 px, 1024-wide heads) so that a model trains in minutes on a
    laptop CPU; the slow training test and the benchmark override what they need.
    """

    NAME = "shapes"
    IMAGES_PER_GPU = 4
    NUM_CLASSES = 1 + len(SHAPE_NAMES)  # background + 3 shapes
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    # Shapes are 8 to 40 pixels wide: anchors 8..128 cover them on P2..P6.
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    PRE_NMS_LIMIT = 1000
    POST_NMS_ROIS_TRAINING = 200
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 32
    MAX_GT_INSTANCES = 6
    DETECTION_MAX_INSTANCES = 10
    MINI_MASK_SHAPE = (28, 28)
    TOP_DOWN_PYRAMID_SIZE = 64
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    STEPS_PER_EPOCH = 50
    VALIDATION_STEPS = 5
    MEAN_PIXEL = [127.5, 127.5, 127.5]


class GrayShapesConfig(ShapesConfig):
    """``ShapesConfig`` for the grayscale variant (``ShapesDataset(channels=1)``)."""

    NAME = "shapes_gray"
    IMAGE_CHANNEL_COUNT = 1
    MEAN_PIXEL = [127.5]


class ShapesDataset(utils.Dataset):
    """Seeded synthetic shapes. Call ``load_shapes`` then ``prepare()``.

    channels: 3 for colour images, 1 for grayscale.
    ``load_image(i)`` -> [H, W, channels] uint8; ``load_mask(i)`` -> (masks [H, W, N] bool,
    class_ids [N] int32) with occluded pixels removed from the masks underneath (a shape hidden
    completely is left out).
    """

    def __init__(self, channels: int = 3, min_contrast: int = 60):
        super().__init__(channels=channels)
        if channels not in (1, 3):
            raise ValueError(f"ShapesDataset: channels must be 1 or 3, got {channels}")
        self.min_contrast = int(min_contrast)

    def load_shapes(
        self,
        count: int,
        height: int,
        width: int,
        rng_or_seed: np.random.Generator | int | None = 0,
        min_shapes: int = 1,
        max_shapes: int = 3,
        prepare: bool = True,
    ) -> None:
        """Add ``count`` random images of ``height`` x ``width`` pixels.

        rng_or_seed: a Generator or a seed; the same seed gives the same images.
        min_shapes, max_shapes: number of shapes per image before overlap removal (0 allowed for
        images without instances). ``prepare`` calls ``self.prepare()`` afterwards.
        """
        rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
        if not 0 <= min_shapes <= max_shapes:
            raise ValueError(f"need 0 <= min_shapes <= max_shapes, got {min_shapes}, {max_shapes}")
        for class_id, name in enumerate(SHAPE_NAMES, start=1):
            self.add_class("shapes", class_id, name)
        start = len(self.image_info)
        for i in range(count):
            background, shapes = self.random_image(height, width, rng, min_shapes, max_shapes)
            self.add_image(
                "shapes", image_id=start + i, path=None, width=width, height=height,
                bg_color=background, shapes=shapes,
            )
        if prepare:
            self.prepare()

    # ---------------------------------------------------------------- random descriptions
    def _color(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(v) for v in rng.integers(0, 256, self.channels))

    def _contrasting_color(self, background, rng: np.random.Generator) -> tuple[int, ...]:
        for _ in range(100):
            color = self._color(rng)
            if max(abs(a - b) for a, b in zip(color, background)) >= self.min_contrast:
                return color
        # a guaranteed contrast of at least 128 in every channel
        return tuple(0 if v >= 128 else 255 for v in background)

    def random_shape(self, height: int, width: int, background, rng: np.random.Generator):
        """A random shape description ``(name, color, (y, x, s))``: centre (y, x), half-size s."""
        name = SHAPE_NAMES[int(rng.integers(0, len(SHAPE_NAMES)))]
        color = self._contrasting_color(background, rng)
        side = min(height, width)
        buffer = max(2, side // 8)
        s_low, s_high = max(2, side // 16), max(3, side // 4)
        s = int(rng.integers(s_low, s_high + 1))
        y = int(rng.integers(buffer, max(buffer + 1, height - buffer)))
        x = int(rng.integers(buffer, max(buffer + 1, width - buffer)))
        return name, color, (y, x, s)

    def random_image(self, height: int, width: int, rng: np.random.Generator, min_shapes: int = 1, max_shapes: int = 3):
        """A background colour and a list of shape descriptions that overlap little.

        Shapes whose boxes overlap an earlier shape's with IoU > 0.3 are dropped (as matterport
        does), and so are shapes more than half hidden by later ones, so an image may end with
        fewer shapes than drawn, but never fewer than one if ``min_shapes`` >= 1 (the last shape
        drawn is always fully visible).
        """
        background = self._color(rng)
        n = int(rng.integers(min_shapes, max_shapes + 1))
        shapes = [self.random_shape(height, width, background, rng) for _ in range(n)]
        if len(shapes) > 1:
            boxes = np.array([[y - s, x - s, y + s, x + s] for _, _, (y, x, s) in shapes], dtype=float)
            keep = utils.non_max_suppression(boxes, np.arange(n, 0, -1, dtype=float), 0.3)
            shapes = [shapes[i] for i in sorted(keep)]
            # A small shape inside a big one passes the box test; drop shapes that later shapes
            # hide by more than half (ambiguous ground truth), as matterport's data never needs.
            full = [self.shape_pixels(name, dims, height, width) for name, _, dims in shapes]
            covered = np.zeros((height, width), dtype=bool)
            visible = [True] * len(shapes)
            for i in range(len(shapes) - 1, -1, -1):
                area = full[i].sum()
                visible[i] = area > 0 and (full[i] & ~covered).sum() >= 0.5 * area
                if visible[i]:
                    covered |= full[i]
            shapes = [shape for shape, keep_it in zip(shapes, visible) if keep_it]
        return background, shapes

    # ---------------------------------------------------------------------------- drawing
    @staticmethod
    def shape_pixels(name: str, dims, height: int, width: int) -> np.ndarray:
        """Boolean [height, width] mask of one shape ``name`` with centre/half-size ``dims``."""
        from skimage.draw import disk, polygon

        y, x, s = dims
        mask = np.zeros((height, width), dtype=bool)
        if name == "square":
            rr, cc = polygon([y - s, y - s, y + s, y + s], [x - s, x + s, x + s, x - s], shape=(height, width))
        elif name == "circle":
            rr, cc = disk((y, x), s, shape=(height, width))
        elif name == "triangle":
            half = s / math.sin(math.radians(60))
            rr, cc = polygon([y - s, y + s, y + s], [x, x - half, x + half], shape=(height, width))
        else:
            raise ValueError(f"unknown shape {name!r} (one of {SHAPE_NAMES})")
        mask[rr, cc] = True
        return mask

    def load_image(self, image_id: int, channels: int | None = None) -> np.ndarray:
        """Draw image ``image_id``: [H, W, C] uint8 (C = ``channels`` or the data set's)."""
        info = self.image_info[image_id]
        h, w = info["height"], info["width"]
        image = np.empty((h, w, self.channels), dtype=np.uint8)
        image[:] = np.asarray(info["bg_color"], dtype=np.uint8)
        for name, color, dims in info["shapes"]:
            image[self.shape_pixels(name, dims, h, w)] = np.asarray(color, dtype=np.uint8)
        return utils.to_channels(image, self.channels if channels is None else int(channels))

    def load_mask(self, image_id: int):
        """Instance masks [H, W, N] bool and class ids [N] int32 of image ``image_id``."""
        info = self.image_info[image_id]
        h, w = info["height"], info["width"]
        shapes = info["shapes"]
        masks = np.zeros((h, w, len(shapes)), dtype=bool)
        for i, (name, _, dims) in enumerate(shapes):
            masks[:, :, i] = self.shape_pixels(name, dims, h, w)
        # Later shapes are drawn on top: remove what they hide from the earlier masks.
        visible = np.ones((h, w), dtype=bool)
        for i in range(len(shapes) - 1, -1, -1):
            masks[:, :, i] &= visible
            visible &= ~masks[:, :, i]
        class_ids = np.array(
            [self.map_source_class_id(f"shapes.{SHAPE_NAMES.index(name) + 1}") for name, _, _ in shapes],
            dtype=np.int32,
        )
        keep = masks.reshape(-1, len(shapes)).any(axis=0) if shapes else np.zeros(0, bool)
        return masks[:, :, keep], class_ids[keep]

    def image_reference(self, image_id: int) -> str:
        """A readable description: the shapes of the image."""
        info: dict[str, Any] = self.image_info[image_id]
        return f"shapes image {image_id}: " + ", ".join(name for name, _, _ in info["shapes"])
