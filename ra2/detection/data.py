"""Training data of one joint detector: a :class:`ra2.mrcnn.Dataset` built from annotated films.

Each film contributes one image per detector it carries objects for: the whole film for ``hands`` and
``feet``, the ground-truth carpus crop (``FilmAnnotation.carpus_box``) for ``wrist_erosion`` and
``wrist_narrowing``. Right limbs are mirrored so every detector sees left limbs only. The image is cut and
shrunk once, when the data set is built (:meth:`ra2.detection.frame.Frame.cut`: long side = the detector's
input side), and kept in memory as uint8, so an epoch never decodes a full-size JPEG; the object polygons
are mapped into the same frame and rasterised on demand in :meth:`DetectorDataset.load_mask`.

Class ids are the contract's: class ``k`` (1-based) of ``contract.DETECTOR_CLASSES[detector]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.detection.frame import detector_frame
from ra2.detection.specs import get_spec
from ra2.mrcnn import Dataset


class DetectorDataset(Dataset):
    """Images and instance masks of one detector (see the module docstring).

    ``image_info[i]`` holds: ``patient_id``, ``limb``, ``frame`` (:class:`Frame`), ``pixels``
    ``[h, w]`` uint8 (the detector image), ``class_ids`` ``[N]`` int32, ``polygons`` (N arrays
    ``[K, (y, x)]`` in detector-image pixels) and ``boxes`` ``[N, (y1, x1, y2, x2)]`` (the annotated boxes
    in detector-image pixels).
    """

    def __init__(self, detector: str, profile):
        super().__init__(channels=1)
        self.spec = get_spec(detector)
        self.detector = detector
        self.profile = profile
        self.side = self.spec.size(profile)
        for cid, name in enumerate(self.spec.class_names, start=1):
            self.add_class(detector, cid, name)

    def add_film(self, film_annotation, film: np.ndarray) -> bool:
        """Add one annotated film (``film``: ``[H, W]`` float32 in [0, 1], original orientation).

        Returns False (nothing added) when the film has no object of this detector.
        """
        objects = film_annotation.objects_of(self.detector)
        if not objects:
            return False
        if film.shape != (film_annotation.height, film_annotation.width):
            raise Ra2Error(f"{film_annotation.file_name}: film is {film.shape[1]}x{film.shape[0]} px but the "
                           f"annotations say {film_annotation.width}x{film_annotation.height}")
        frame = detector_frame(self.detector, film.shape, film_annotation.limb, self.side,
                               film_annotation.carpus_box)
        polygons = [frame.points_to_image(o.polygon) for o in objects]
        boxes = np.array([frame.box_to_image(o.box) for o in objects], dtype=np.float64).reshape(-1, 4)
        class_ids = np.array([self.spec.class_id(o.class_name) for o in objects], dtype=np.int32)
        self.add_image(self.detector, image_id=len(self.image_info), path=film_annotation.file_name,
                       patient_id=film_annotation.patient_id, limb=film_annotation.limb, frame=frame,
                       pixels=frame.cut(film), class_ids=class_ids, polygons=polygons, boxes=boxes,
                       height=frame.out_height, width=frame.out_width)
        return True

    def load_image(self, image_id: int, channels: int | None = None) -> np.ndarray:
        """The detector image ``[h, w, 1]`` uint8 (``channels`` other than 1 repeat the grey channel)."""
        from ra2.mrcnn import utils

        pixels = self.image_info[image_id]["pixels"][:, :, None]
        return utils.to_channels(pixels, 1 if channels is None else int(channels))

    def load_mask(self, image_id: int):
        """Instance masks ``[h, w, N]`` bool (polygons rasterised) and class ids ``[N]`` int32."""
        from ra2.annotations import polygon_to_mask

        info = self.image_info[image_id]
        shape = info["pixels"].shape
        masks = np.stack([polygon_to_mask(p, shape) for p in info["polygons"]], axis=-1) \
            if info["polygons"] else np.zeros(shape + (0,), bool)
        class_ids = np.array([self.map_source_class_id(f"{self.detector}.{c}") for c in info["class_ids"]],
                             dtype=np.int32)
        return masks, class_ids

    def layout_examples(self) -> list[dict[int, tuple[float, float, float, float]]]:
        """Per image: class id -> annotated box (y1, x1, y2, x2) in detector-image pixels (for ``Layout.fit``)."""
        return [{int(c): tuple(float(v) for v in b) for c, b in zip(info["class_ids"], info["boxes"])}
                for info in self.image_info]

    def image_reference(self, image_id: int) -> str:
        info = self.image_info[image_id]
        return f"{info['path']} ({self.detector}, {info['limb']})"


def build_detector_datasets(films_dir: str | Path, films: Iterable, profile,
                            detectors: Iterable[str] = contract.DETECTORS,
                            reader: Callable[[Path], np.ndarray] | None = None,
                            progress: bool = False) -> dict[str, DetectorDataset]:
    """The prepared data sets of ``detectors`` from annotated films, each film decoded once.

    Args:
        films_dir: folder holding the films named by ``FilmAnnotation.file_name``.
        films: :class:`ra2.annotations.FilmAnnotation` objects (the phantom's ground truth or imported
            annotations).
        profile: the profile (input sizes): a name or resolved :class:`ra2.profiles.Settings`.
        reader: ``path -> [H, W] float32`` (default :func:`ra2.io.read_film`).
    """
    from ra2.io import read_film

    read = reader or read_film
    films_dir = Path(films_dir)
    datasets = {d: DetectorDataset(d, profile) for d in detectors}
    films = list(films)
    if progress:
        from tqdm import tqdm

        films = tqdm(films, desc="detector images", unit="film")
    for ann in films:
        needed = [d for d in datasets if ann.objects_of(d)]
        if not needed:
            continue
        path = films_dir / ann.file_name
        if not path.is_file():
            raise Ra2Error(f"{path}: film listed in the annotations is missing")
        film = read(path)
        for d in needed:
            datasets[d].add_film(ann, film)
    for d, ds in datasets.items():
        if not ds.image_info:
            raise Ra2Error(f"{films_dir}: no annotated film for the {d} detector")
        ds.prepare()
    return datasets
