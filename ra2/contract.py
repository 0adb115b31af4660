"""The one catalogue of the RA2 DREAM Challenge contract.

Every column name, score range, limb, joint family and detector class in ra2 comes from here; no other
module spells them by hand.

Vocabulary
----------
- **limb**: ``LH``, ``RH`` (left/right hand), ``LF``, ``RF`` (left/right foot); one film per limb.
- **site**: one physical joint (or wrist area) that is cropped once and scored for erosion and/or
  narrowing. Its id is the column name without the kind letter: ``LH_pip_E__2`` and ``LH_pip_J__2`` both
  score site ``LH_pip__2``. The thumb IP joint is site ``LH_mcp__ip`` (column ``LH_mcp_E__ip``, erosion
  only). Wrist erosion areas and wrist narrowing areas are different sites (``LH_wrist__nav`` vs
  ``LH_wrist__mna``) found by different detectors.
- **score**: one of the 86 joint columns: its site, kind (``erosion``/``narrowing``), range and data set.
- **detector**: one of the four Mask R-CNN detectors (``feet``, ``hands``, ``wrist_erosion``,
  ``wrist_narrowing``) with its ordered class names (class id = index + 1; 0 is background). The hands
  detector's ``carpus`` class is a region, not a scored site: the wrist detectors run on its crop.
- **dataset**: one of the three regressor data sets (``foot_erosion`` 0-10, ``hand_erosion`` 0-5,
  ``narrowing`` 0-4).
"""

from __future__ import annotations

from dataclasses import dataclass

PATIENT_COLUMN = "Patient_ID"
OVERALL_TOTAL = "Overall_Tol"
OVERALL_EROSION = "Overall_erosion"
OVERALL_NARROWING = "Overall_narrowing"
OVERALL_COLUMNS = (OVERALL_TOTAL, OVERALL_EROSION, OVERALL_NARROWING)

LIMBS = ("LH", "RH", "LF", "RF")
HAND_LIMBS = ("LH", "RH")
FOOT_LIMBS = ("LF", "RF")
LIMB_NAMES = {"LH": "left hand", "RH": "right hand", "LF": "left foot", "RF": "right foot"}
OTHER_LIMB = {"LH": "RH", "RH": "LH", "LF": "RF", "RF": "LF"}
"""The patient's other limb of the same kind (the other side)."""

EROSION = "erosion"
NARROWING = "narrowing"
KIND_LETTER = {EROSION: "E", NARROWING: "J"}

# Regressor data sets: name -> maximum score.
DATASET_MAX = {"foot_erosion": 10, "hand_erosion": 5, "narrowing": 4}
DATASETS = tuple(DATASET_MAX)

# The four detectors' names.
FEET, HANDS, WRIST_EROSION, WRIST_NARROWING = "feet", "hands", "wrist_erosion", "wrist_narrowing"
FILM_DETECTORS = (FEET, HANDS)
"""Detectors that run on the whole film (the wrist detectors run on the hands detector's carpus crop)."""

# Detectors: name -> ordered class names (class id = position + 1). The class name of a scored site is
# "{family}__{name}", the site id without its limb.
DETECTOR_CLASSES: dict[str, tuple[str, ...]] = {
    FEET: ("mtp__ip", "mtp__1", "mtp__2", "mtp__3", "mtp__4", "mtp__5"),
    HANDS: (
        "mcp__ip", "pip__2", "pip__3", "pip__4", "pip__5",
        "mcp__1", "mcp__2", "mcp__3", "mcp__4", "mcp__5",
        "carpus",
    ),
    WRIST_EROSION: (
        "wrist__mc1", "wrist__mul", "wrist__nav", "wrist__lunate", "wrist__radius", "wrist__ulna",
    ),
    WRIST_NARROWING: (
        "wrist__cmc3", "wrist__cmc4", "wrist__cmc5", "wrist__mna", "wrist__capnlun", "wrist__radcar",
    ),
}
DETECTORS = tuple(DETECTOR_CLASSES)
CARPUS_CLASS = "carpus"
# Detectors that run on the hand detector's carpus crop rather than on the whole film.
CARPUS_DETECTORS = (WRIST_EROSION, WRIST_NARROWING)
# Which detector runs on which limb's film (wrist detectors: on the carpus crop of a hand film).
LIMB_DETECTORS = {"LH": (HANDS,) + CARPUS_DETECTORS, "RH": (HANDS,) + CARPUS_DETECTORS,
                  "LF": (FEET,), "RF": (FEET,)}


@dataclass(frozen=True)
class Site:
    """One physical joint or wrist area of one limb: cropped once, scored for one or two kinds."""

    id: str  # e.g. "LH_pip__2"
    limb: str  # LH, RH, LF, RF
    family: str  # pip, mcp, wrist, mtp
    name: str  # e.g. "2", "ip", "nav"
    detector: str  # which detector finds it
    detector_class: str  # class name in that detector, e.g. "pip__2"
    class_id: int  # 1-based class id in that detector


@dataclass(frozen=True)
class Score:
    """One of the 86 joint score columns."""

    column: str  # e.g. "LH_pip_E__2"
    site: Site
    kind: str  # erosion | narrowing
    max_score: int  # inclusive upper bound; lower bound is 0
    dataset: str  # foot_erosion | hand_erosion | narrowing

    @property
    def limb(self) -> str:
        return self.site.limb


# Order of the joint columns inside each limb block, exactly as in the official template.
_HAND_EROSION = ("mcp__ip", "pip__2", "pip__3", "pip__4", "pip__5", "mcp__1", "mcp__2", "mcp__3",
                 "mcp__4", "mcp__5", "wrist__mc1", "wrist__mul", "wrist__nav", "wrist__lunate",
                 "wrist__radius", "wrist__ulna")
_HAND_NARROWING = ("pip__2", "pip__3", "pip__4", "pip__5", "mcp__1", "mcp__2", "mcp__3", "mcp__4",
                   "mcp__5", "wrist__cmc3", "wrist__cmc4", "wrist__cmc5", "wrist__mna",
                   "wrist__capnlun", "wrist__radcar")
_FOOT = ("mtp__ip", "mtp__1", "mtp__2", "mtp__3", "mtp__4", "mtp__5")


def _detector_of(limb: str, class_name: str) -> str:
    if limb in FOOT_LIMBS:
        return FEET
    for det in (HANDS,) + CARPUS_DETECTORS:
        if class_name in DETECTOR_CLASSES[det]:
            return det
    raise KeyError(class_name)


def _make_site(limb: str, class_name: str) -> Site:
    family, name = class_name.split("__")
    det = _detector_of(limb, class_name)
    return Site(id=f"{limb}_{class_name}", limb=limb, family=family, name=name, detector=det,
                detector_class=class_name, class_id=DETECTOR_CLASSES[det].index(class_name) + 1)


def _make_score(limb: str, class_name: str, kind: str) -> Score:
    site = _make_site(limb, class_name)
    column = f"{limb}_{site.family}_{KIND_LETTER[kind]}__{site.name}"
    if kind == NARROWING:
        dataset = "narrowing"
    elif limb in FOOT_LIMBS:
        dataset = "foot_erosion"
    else:
        dataset = "hand_erosion"
    return Score(column=column, site=site, kind=kind, max_score=DATASET_MAX[dataset], dataset=dataset)


def _build_scores() -> tuple[Score, ...]:
    out = []
    for kind, hand_block in ((EROSION, _HAND_EROSION), (NARROWING, _HAND_NARROWING)):
        for limb in LIMBS:
            block = hand_block if limb in HAND_LIMBS else _FOOT
            out.extend(_make_score(limb, c, kind) for c in block)
    return tuple(out)


SCORES: tuple[Score, ...] = _build_scores()
"""The 86 joint scores in official column order (44 erosion, then 42 narrowing)."""

JOINT_COLUMNS: tuple[str, ...] = tuple(s.column for s in SCORES)
EROSION_COLUMNS: tuple[str, ...] = tuple(s.column for s in SCORES if s.kind == EROSION)
NARROWING_COLUMNS: tuple[str, ...] = tuple(s.column for s in SCORES if s.kind == NARROWING)
COLUMNS: tuple[str, ...] = (PATIENT_COLUMN,) + OVERALL_COLUMNS + JOINT_COLUMNS
"""All 90 columns of training.csv / template.csv / predictions.csv, in the official order."""

SCORE_BY_COLUMN: dict[str, Score] = {s.column: s for s in SCORES}
MAX_SCORE: dict[str, int] = {s.column: s.max_score for s in SCORES}


def _build_sites() -> tuple[Site, ...]:
    seen: dict[str, Site] = {}
    for s in SCORES:
        seen.setdefault(s.site.id, s.site)
    return tuple(seen.values())


SITES: tuple[Site, ...] = _build_sites()
"""Every scored site (one crop each), in first-appearance order of the columns: 56 sites."""
SITE_BY_ID: dict[str, Site] = {s.id: s for s in SITES}


def scores_of_site(site_id: str) -> tuple[Score, ...]:
    """The score columns (1 or 2) that a site's crop feeds."""
    return tuple(s for s in SCORES if s.site.id == site_id)


def scores_of_dataset(dataset: str) -> tuple[Score, ...]:
    """The score columns of one regressor data set, in column order."""
    if dataset not in DATASET_MAX:
        raise KeyError(f"unknown data set {dataset!r}; expected one of {DATASETS}")
    return tuple(s for s in SCORES if s.dataset == dataset)


def sites_of_limb(limb: str) -> tuple[Site, ...]:
    return tuple(s for s in SITES if s.limb == limb)


def site_for_detection(limb: str, detector: str, class_name: str) -> Site | None:
    """The site a detector class produces on a limb, or None for the carpus region."""
    if class_name == CARPUS_CLASS:
        return None
    site = SITE_BY_ID.get(f"{limb}_{class_name}")
    if site is None or site.detector != detector:
        raise KeyError(f"detector {detector!r} has no class {class_name!r} on limb {limb}")
    return site


def limb_columns(limbs: tuple[str, ...] | str, kind: str | None = None) -> tuple[str, ...]:
    """Joint columns of the given limbs (e.g. ``("LH", "RH")``), optionally of one kind."""
    if isinstance(limbs, str):
        limbs = (limbs,)
    return tuple(s.column for s in SCORES if s.limb in limbs and (kind is None or s.kind == kind))


def film_detector(limb: str) -> str:
    """The detector that runs on ``limb``'s whole film: :data:`HANDS` or :data:`FEET`."""
    return LIMB_DETECTORS[limb][0]


def other_side(column: str) -> str:
    """The same joint on the patient's other limb (:data:`OTHER_LIMB`): ``"LH_pip_E__2"`` -> ``"RH_pip_E__2"``."""
    limb, rest = column.split("_", 1)
    return f"{OTHER_LIMB[limb]}_{rest}"


def film_name(patient_id: str, limb: str, ext: str = ".jpg") -> str:
    """Film file name in the challenge layout: ``{Patient_ID}-{LH,RH,LF,RF}.jpg``."""
    if limb not in LIMBS:
        raise KeyError(f"unknown limb {limb!r}; expected one of {LIMBS}")
    return f"{patient_id}-{limb}{ext}"


def is_right(limb: str) -> bool:
    """Right limbs are mirrored so that every detector sees left limbs only."""
    return limb[0] == "R"


def add_overall(frame):
    """The one rule for the three ``Overall_*`` columns: ``frame`` (a pandas DataFrame with ``Patient_ID`` and
    the 86 joint columns; stale ``Overall_*`` columns are replaced) -> a new frame of the 90 columns of
    :data:`COLUMNS`, in order, with ``Overall_erosion`` = sum of the erosion joints, ``Overall_narrowing`` =
    sum of the narrowing joints, ``Overall_Tol`` = their sum."""
    out = frame.copy()
    out[OVERALL_EROSION] = out[list(EROSION_COLUMNS)].sum(axis=1)
    out[OVERALL_NARROWING] = out[list(NARROWING_COLUMNS)].sum(axis=1)
    out[OVERALL_TOTAL] = out[OVERALL_EROSION] + out[OVERALL_NARROWING]
    return out[list(COLUMNS)].reset_index(drop=True)
