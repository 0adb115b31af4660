"""Phantom: seeded synthetic hand/foot radiographs in the challenge layout, with scores and ground truth.

Public API: :func:`generate_dataset` (a whole data set), :func:`sample_patient_scores` (one patient's
scores), :func:`render_film` (one film and its :class:`ra2.annotations.FilmAnnotation`) and
:func:`contact_sheet`. The ground truth is written in the pipeline's annotation format
(:mod:`ra2.annotations`), which detection and scoring read; they never import the phantom.
"""

from ra2.phantom.contact_sheet import contact_sheet, damage_scale
from ra2.phantom.dataset import generate_dataset, patient_id
from ra2.phantom.labels import sample_patient_scores
from ra2.phantom.render import render_film

__all__ = ["generate_dataset", "patient_id", "sample_patient_scores", "render_film", "contact_sheet",
           "damage_scale"]
