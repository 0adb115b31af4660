"""Phantom: seeded synthetic hand/foot radiographs in the challenge layout, with scores and ground truth.

Public API: :func:`generate_dataset` (a whole data set), :func:`sample_patient_scores` (one patient's
scores), :func:`render_film` (one film and its :class:`FilmAnnotation`), the annotation I/O
(:func:`read_annotations`, :func:`write_annotations`, :func:`polygon_to_mask`) and :func:`contact_sheet`.
"""

from ra2.phantom.annotations import (FilmAnnotation, ObjectAnnotation, polygon_to_mask, read_annotations,
                                     write_annotations)
from ra2.phantom.contact_sheet import contact_sheet, damage_scale
from ra2.phantom.dataset import generate_dataset, patient_id
from ra2.phantom.labels import sample_patient_scores
from ra2.phantom.render import render_film

__all__ = ["FilmAnnotation", "ObjectAnnotation", "polygon_to_mask", "read_annotations", "write_annotations",
           "generate_dataset", "patient_id", "sample_patient_scores", "render_film", "contact_sheet",
           "damage_scale"]
