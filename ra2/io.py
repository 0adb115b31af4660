"""CSVs and films in, predictions out: the project's only door to the file system of the challenge.

- ``training.csv`` / gold CSVs: :func:`read_training_csv` (columns and ids strict; a row with a missing,
  out-of-range or inconsistent score is skipped and reported), :func:`read_gold_csv` (every row strict,
  no sum check).
- ``template.csv``: :func:`read_template_csv` (only ``Patient_ID`` matters; score cells are ignored).
- ``predictions.csv``: :func:`read_predictions_csv` (for scoring), :func:`write_predictions` (template
  order, atomic), :func:`validate_predictions` (a list of problems, never raises for a broken file).
- Films: :func:`find_film` (never outside its folder) and :func:`read_film` (any of JPEG/PNG/TIFF/DICOM ->
  ``[H, W]`` float32 in [0, 1], longer side at most :data:`MAX_FILM_SIDE`).

Every user-facing problem raises :class:`ra2.Ra2Error` with a message naming the file and, where it
applies, the line (1-based, the header is line 1), the ``Patient_ID`` and the column.

CSVs are parsed with the :mod:`csv` module, not ``pandas.read_csv``, so that every cell is first seen as
the exact text in the file: ``Patient_ID`` values such as ``0001`` stay strings, and each problem can be
reported with its line number. TensorFlow is not imported here.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error
from ra2 import contract as C

log = logging.getLogger("ra2.io")

TRAINING_CSV = "training.csv"
TEMPLATE_CSV = "template.csv"
PREDICTIONS_CSV = "predictions.csv"
UNCERTAINTY_CSV = "predictions_uncertainty.csv"
"""The challenge's file names (``/train/training.csv``, ``/test/template.csv``, ``/output/predictions.csv``)
and the spread table ra2 writes beside the predictions (:func:`write_uncertainty`)."""
DETECTIONS_JSON = "detections.json"
"""Written beside the predictions too (by :mod:`ra2.pipeline.predict`): the boxes each joint was scored from."""

FILM_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm")
"""Extensions :func:`find_film` tries, in this order (the contract's ``.jpg`` first)."""

SUM_TOLERANCE = 1e-6
"""Largest accepted difference between an ``Overall_*`` cell and the sum of its joint cells."""

MAX_CELL_PROBLEMS = 200
""":func:`validate_predictions` lists at most this many cell problems, then one summary line."""

MAX_LISTED_ROWS = 10
"""The warning about skipped ``training.csv`` rows lists at most this many, then a count."""

MAX_FILM_SIDE = 4096
"""Longest side, in pixels, of a film returned by :func:`read_film`; a longer film is downscaled at read
(the challenge's and the phantom's films are 1000-3000 px, so only an oversized scan is touched)."""

# Cell texts that read as "missing" (pandas' defaults, the ones that occur in practice).
_NA_TEXTS = frozenset({"", "na", "nan", "n/a", "null", "none", "<na>", "-nan", "#n/a"})

# ITU-R BT.601 luma weights, the ones Pillow's "L" conversion uses.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# CSV parsing
# --------------------------------------------------------------------------------------------------
@dataclass
class _Table:
    """A CSV file as text: header cells and data rows, each row with its 1-based line number."""

    path: Path
    header: list[str]
    rows: list[tuple[int, list[str]]]


def _load_table(path: Path, what: str) -> _Table:
    """Read a CSV file as text cells; raise Ra2Error for a missing, empty, undecodable or ragged file.

    ``what`` names the file's role in messages (e.g. ``"training CSV"``).
    """
    path = Path(path)
    if not path.exists():
        raise Ra2Error(f"{what} {path}: file not found")
    if path.is_dir():
        raise Ra2Error(f"{what} {path}: is a folder, expected a CSV file")
    try:
        # utf-8-sig drops the byte-order mark that spreadsheet programs write.
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            records = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise Ra2Error(f"{what} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise Ra2Error(f"{what} {path}: unreadable CSV ({exc})") from None
    except OSError as exc:
        raise Ra2Error(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    # Blank (or whitespace-only) lines carry no record; a file of blank lines is empty. A line of
    # empty fields (",,,") is a record and is checked like any other.
    records = [(line, row) for line, row in records if len(row) > 1 or (row and row[0].strip())]
    if not records:
        raise Ra2Error(f"{what} {path}: empty file (no header line)")
    header = records[0][1]  # not stripped: "Patient_ID " is not the column Patient_ID
    rows = records[1:]
    for line, row in rows:
        if len(row) != len(header):
            raise Ra2Error(f"{what} {path}, line {line}: {len(row)} fields, the header has {len(header)}")
    return _Table(path=path, header=header, rows=rows)


def _column_problems(header: list[str], expected: tuple[str, ...], source: str) -> list[str]:
    """Problems with a header against the expected columns: duplicates, missing, extra, order.

    ``source`` names where the expected order comes from (e.g. ``"the template"``)."""
    problems = []
    seen: set[str] = set()
    for col in header:
        if col in seen:
            problems.append(f"duplicate column {col!r}")
        seen.add(col)
    missing = [c for c in expected if c not in seen]
    extra = [c for c in header if c not in expected]
    for col in missing:
        problems.append(f"missing column {col!r}")
    for col in dict.fromkeys(extra):
        problems.append(f"extra column {col!r}")
    if not problems and tuple(header) != expected:
        pos = next(i for i, (a, b) in enumerate(zip(header, expected)) if a != b)
        problems.append(f"wrong column order: column {pos + 1} is {header[pos]!r}, "
                        f"expected {expected[pos]!r} (the order of {source})")
    return problems


def _parse_number(text: str) -> float | None:
    """The float in a cell, NaN for an empty/NA cell, None when the text is not a number."""
    t = text.strip()
    if t.lower() in _NA_TEXTS:
        return math.nan
    if "_" in t:  # Python's float() reads "1_0" as 10; a CSV reader in R or pandas would not
        return None
    try:
        return float(t)
    except ValueError:
        return None


def _check_ids(table: _Table, what: str) -> list[str]:
    """Patient ids of a table (text untouched); raise for an empty or duplicate id."""
    col = table.header.index(C.PATIENT_COLUMN)
    first_line: dict[str, int] = {}
    ids = []
    for line, row in table.rows:
        pid = row[col]
        if not pid.strip():
            raise Ra2Error(f"{what} {table.path}, line {line}, column {C.PATIENT_COLUMN!r}: empty Patient_ID")
        if pid in first_line:
            raise Ra2Error(f"{what} {table.path}, line {line}: duplicate Patient_ID {pid!r} "
                           f"(first on line {first_line[pid]})")
        first_line[pid] = line
        ids.append(pid)
    return ids


def _score_frame(ids: list[str], values: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    """DataFrame with ``Patient_ID`` (str) then float64 score columns. values: [P, len(columns)]."""
    df = pd.DataFrame(values, columns=list(columns), dtype=np.float64)
    df.insert(0, C.PATIENT_COLUMN, pd.Series(ids, dtype=object))
    return df


def read_score_csv(path: str | os.PathLike, *, check_sums: bool = True,
                   what: str = "training CSV", skip_bad_rows: bool = False) -> pd.DataFrame:
    """Read and validate a CSV of true scores (``training.csv`` or a gold standard).

    File-level checks, each failure a :class:`Ra2Error` naming the file (and the line where it applies):
    the columns are exactly ``contract.COLUMNS`` in that order; ``Patient_ID`` is non-empty and unique;
    every row has the header's number of fields.

    Row-level checks: every score cell is a finite number in ``[0, contract.MAX_SCORE[column]]``
    (``Overall_*``: non-negative); with ``check_sums``, ``Overall_erosion`` = sum of the erosion columns,
    ``Overall_narrowing`` = sum of the narrowing columns and ``Overall_Tol`` = their sum (to
    :data:`SUM_TOLERANCE`). A row failing one of them raises :class:`Ra2Error` naming file, line,
    ``Patient_ID`` and column; with ``skip_bad_rows`` the row is left out instead, one warning (logger
    ``ra2.io``) lists the skipped rows, and ``df.attrs["skipped_rows"]`` holds one line per skipped row
    (``"line L, patient 'ID', column 'C': problem"``; empty list when none). A file whose every data row
    is skipped raises :class:`Ra2Error`: there is nothing left to learn from.

    Returns a DataFrame ``[P rows, 90 columns]`` (the kept rows, in file order): ``Patient_ID`` as str,
    the rest float64.
    """
    table = _load_table(Path(path), what)
    problems = _column_problems(table.header, C.COLUMNS, "contract.COLUMNS")
    if problems:
        raise Ra2Error(f"{what} {table.path}: " + "; ".join(problems))
    ids = _check_ids(table, what)
    values = np.empty((len(table.rows), len(C.COLUMNS) - 1), dtype=np.float64)
    kept: list[int] = []
    skipped: list[str] = []
    for r, (line, row) in enumerate(table.rows):
        problem = _score_row_problem(row[1:], values[r], check_sums)
        if problem is None:
            kept.append(r)
            continue
        where = f"line {line}, patient {ids[r]!r}, {problem}"
        if not skip_bad_rows:
            raise Ra2Error(f"{what} {table.path}, {where}")
        skipped.append(where)
    if skipped:
        if not kept:
            raise Ra2Error(f"{what} {table.path}: no usable row, all {len(skipped)} skipped "
                           f"(first: {skipped[0]})")
        shown = "; ".join(skipped[:MAX_LISTED_ROWS])
        more = f"; and {len(skipped) - MAX_LISTED_ROWS} more" if len(skipped) > MAX_LISTED_ROWS else ""
        log.warning("%s %s: skipped %d of %d rows with missing or out-of-range scores: %s%s", what,
                    table.path, len(skipped), len(table.rows), shown, more)
    df = _score_frame([ids[r] for r in kept], values[kept], C.COLUMNS[1:])
    df.attrs["skipped_rows"] = skipped
    return df


def _score_row_problem(cells: list[str], out: np.ndarray, check_sums: bool) -> str | None:
    """Parse the 89 score cells of one row into ``out`` ([89] float64, ``contract.COLUMNS[1:]`` order).

    Returns None for a good row, else its first problem as ``"column 'C': what is wrong"``."""
    for c, col in enumerate(C.COLUMNS[1:]):
        text = cells[c]
        x = _parse_number(text)
        if x is None:
            return f"column {col!r}: not a number: {text!r}"
        if not math.isfinite(x):
            return f"column {col!r}: missing or infinite value ({text!r})"
        if x < 0:
            return f"column {col!r}: negative score {x:g}"
        if col in C.MAX_SCORE and x > C.MAX_SCORE[col]:
            return f"column {col!r}: score {x:g} above the maximum {C.MAX_SCORE[col]}"
        out[c] = x
    if not check_sums:
        return None
    value = dict(zip(C.COLUMNS[1:], out))
    erosion = math.fsum(value[c] for c in C.EROSION_COLUMNS)
    narrowing = math.fsum(value[c] for c in C.NARROWING_COLUMNS)
    for col, want in ((C.OVERALL_EROSION, erosion), (C.OVERALL_NARROWING, narrowing),
                      (C.OVERALL_TOTAL, erosion + narrowing)):
        got = value[col]
        if abs(got - want) > SUM_TOLERANCE * max(1.0, abs(want)):
            return f"column {col!r}: {got:g} but its joint scores sum to {want:g}"
    return None


def read_training_csv(path: str | os.PathLike, *, strict: bool = False) -> pd.DataFrame:
    """Read ``training.csv``: :func:`read_score_csv` with every check, sums included.

    A row with a missing (NaN, empty), non-numeric, infinite, negative or above-maximum score, or whose
    ``Overall_*`` cells differ from the sums of its joints (the challenge states they hold), is a bad
    record, not a bad file: it is skipped, the skipped rows are logged in one warning and listed in
    ``df.attrs["skipped_rows"]`` (so ``len(df.attrs["skipped_rows"])`` is their count). With ``strict``
    the first bad row raises :class:`Ra2Error` instead. Problems of the whole file (columns, ids, ragged
    rows, every row bad) always raise.
    """
    return read_score_csv(path, check_sums=True, what="training CSV", skip_bad_rows=not strict)


def read_gold_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a gold-standard CSV for scoring: like :func:`read_training_csv` but the ``Overall_*``
    columns are taken as given (SC1 scores the gold ``Overall_Tol`` itself, not a re-summed one)."""
    return read_score_csv(path, check_sums=False, what="gold CSV")


def read_template_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``template.csv``: the test set is exactly its ``Patient_ID`` rows, in its order.

    Required: a ``Patient_ID`` column with non-empty, unique ids. Every other column must be one of
    ``contract.COLUMNS`` and appear once (a prediction can only be written for a known column); columns
    the template lacks are simply not written. Score cells may hold anything and are ignored.

    Returns a DataFrame of the template's columns in file order, every cell the file's text (str).
    """
    what = "template CSV"
    table = _load_table(Path(path), what)
    if C.PATIENT_COLUMN not in table.header:
        raise Ra2Error(f"{what} {table.path}: missing column {C.PATIENT_COLUMN!r}")
    problems = []
    seen: set[str] = set()
    for col in table.header:
        if col in seen:
            problems.append(f"duplicate column {col!r}")
        elif col not in C.COLUMNS:
            problems.append(f"unknown column {col!r}")
        seen.add(col)
    if problems:
        raise Ra2Error(f"{what} {table.path}: " + "; ".join(problems))
    _check_ids(table, what)
    data = {col: pd.Series([row[i] for _, row in table.rows], dtype=object)
            for i, col in enumerate(table.header)}
    return pd.DataFrame(data, columns=table.header)


def read_predictions_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``predictions.csv`` for scoring.

    Requires every column of ``contract.COLUMNS`` (order and extra columns are not checked here: that is
    :func:`validate_predictions`' job), unique non-empty ids and a finite number in every score cell.
    Negative numbers are kept (the metric clips them). Raises :class:`Ra2Error` naming file, line,
    patient and column. Returns ``[P rows, 90 columns]``: ``Patient_ID`` str, the rest float64.
    """
    what = "predictions CSV"
    table = _load_table(Path(path), what)
    missing = [c for c in C.COLUMNS if c not in table.header]
    if missing:
        raise Ra2Error(f"{what} {table.path}: missing column(s) " + ", ".join(repr(c) for c in missing))
    dupes = sorted({c for c in table.header if table.header.count(c) > 1})
    if dupes:
        raise Ra2Error(f"{what} {table.path}: duplicate column(s) " + ", ".join(repr(c) for c in dupes))
    ids = _check_ids(table, what)
    index = [table.header.index(c) for c in C.COLUMNS[1:]]
    values = np.empty((len(table.rows), len(index)), dtype=np.float64)
    for r, (line, row) in enumerate(table.rows):
        for c, i in enumerate(index):
            x = _parse_number(row[i])
            if x is None or not math.isfinite(x):
                kind = "not a number" if x is None else "missing or infinite value"
                raise Ra2Error(f"{what} {table.path}, line {line}, patient {ids[r]!r}, "
                               f"column {C.COLUMNS[c + 1]!r}: {kind}: {row[i]!r}")
            values[r, c] = x
    return _score_frame(ids, values, C.COLUMNS[1:])


# --------------------------------------------------------------------------------------------------
# Predictions out
# --------------------------------------------------------------------------------------------------
def _format_number(x: float) -> str:
    """Shortest text that reads back to the same float64 (``repr``), ``-0.0`` written as ``0.0``."""
    return repr(float(x) + 0.0)



def match_patient_rows(ids: list[str], reference_ids: list[str], where: str, duplicate: str,
                       missing: str) -> np.ndarray:
    """Row index into ``ids`` of each of ``reference_ids``, in reference order: ``[len(reference_ids)]`` int64.

    Raises :class:`Ra2Error` ``"{where}: {duplicate} 'ID'"`` for an id that appears twice in ``ids`` and
    ``"{where}: {missing} 'A', 'B' ..."`` (the first ten) for reference ids absent from ``ids``. Ids in
    ``ids`` but not in ``reference_ids`` are ignored.
    """
    row_of: dict[str, int] = {}
    for i, pid in enumerate(ids):
        if pid in row_of:
            raise Ra2Error(f"{where}: {duplicate} {pid!r}")
        row_of[pid] = i
    missing_ids = [pid for pid in reference_ids if pid not in row_of]
    if missing_ids:
        shown = ", ".join(repr(p) for p in missing_ids[:10])
        more = f" and {len(missing_ids) - 10} more" if len(missing_ids) > 10 else ""
        raise Ra2Error(f"{where}: {missing} {shown}{more}")
    return np.array([row_of[pid] for pid in reference_ids], dtype=np.int64)

def write_predictions(df: pd.DataFrame, template: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``predictions.csv`` in the template's column and row order, atomically.

    df: one row per patient with a ``Patient_ID`` column and (at least) every score column the template
    has; rows are matched by ``Patient_ID`` (compared as text), so their order does not matter and rows
    for patients outside the template are ignored. template: as returned by :func:`read_template_csv`.
    Every template patient and column must be present in ``df`` and every value finite, else
    :class:`Ra2Error` naming the patient and column. ``Patient_ID`` is written exactly as the template
    has it; numbers are written with full float64 precision.

    The file is written to a temporary file in the same folder, flushed and fsync'ed, then moved onto
    ``path`` with :func:`os.replace`: a crash leaves either the old file or the new one, never half of
    one. Returns the path written.
    """
    path = Path(path)
    if C.PATIENT_COLUMN not in df.columns:
        raise Ra2Error(f"predictions for {path}: no {C.PATIENT_COLUMN!r} column")
    if C.PATIENT_COLUMN not in template.columns:
        raise Ra2Error(f"template for {path}: no {C.PATIENT_COLUMN!r} column")
    columns = list(template.columns)
    score_cols = [c for c in columns if c != C.PATIENT_COLUMN]
    missing_cols = [c for c in score_cols if c not in df.columns]
    if missing_cols:
        raise Ra2Error(f"predictions for {path}: missing column(s) "
                       + ", ".join(repr(c) for c in missing_cols))
    pred_ids = [str(x) for x in df[C.PATIENT_COLUMN]]
    template_ids = [str(x) for x in template[C.PATIENT_COLUMN]]
    order = match_patient_rows(pred_ids, template_ids, f"predictions for {path}", "duplicate Patient_ID",
                               "no prediction for template patient(s)")
    try:
        values = df[score_cols].to_numpy(dtype=np.float64)[order] if score_cols else \
            np.empty((len(order), 0))
    except (TypeError, ValueError) as exc:
        raise Ra2Error(f"predictions for {path}: non-numeric prediction ({exc})") from None
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        r, c = bad[0]
        raise Ra2Error(f"predictions for {path}: patient {template_ids[r]!r}, column {score_cols[c]!r}: "
                       f"value {values[r, c]!r} is not finite")
    lines = []
    for r, pid in enumerate(template_ids):
        lines.append([pid] + [_format_number(v) for v in values[r]])
    # Patient_ID keeps its column position in the template.
    pid_pos = columns.index(C.PATIENT_COLUMN)
    rows = [row[1:pid_pos + 1] + [row[0]] + row[pid_pos + 1:] for row in lines]
    write_csv_atomic(path, columns, rows)
    return path


def write_csv_atomic(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write a CSV of text cells (``header``, then ``rows``; ``\\n`` line ends, minimal quoting) through a
    temporary file in the same folder, fsync, then :func:`os.replace`: a reader sees the old file or the new
    one, never half of one. The folder must exist (else :class:`Ra2Error`). Every CSV ra2 writes goes through
    here."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise Ra2Error(f"cannot write {path}: folder {folder} does not exist")
    tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        # 0o666 filtered by the umask: the same permissions a plain open() would give.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise Ra2Error(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable; not every file system allows fsync on a folder
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_uncertainty(frame: pd.DataFrame, template: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``predictions_uncertainty.csv`` atomically: ``frame`` (the 90 columns of ``contract.COLUMNS``,
    one row per patient, NaN allowed: :func:`ra2.scoring.uncertainty.uncertainty_frame`) in the template's row
    order, rows matched by ``Patient_ID`` as text and written with the template's text. Cells: ``%.6g``,
    empty for NaN. A template patient without a row is a :class:`Ra2Error` naming ``path``. Returns the path."""
    path = Path(path)
    ids = [str(p) for p in frame[C.PATIENT_COLUMN]]
    template_ids = [str(p) for p in template[C.PATIENT_COLUMN]]
    order = match_patient_rows(ids, template_ids, f"uncertainty for {path}", "duplicate Patient_ID",
                               "no spread for template patient(s)")
    values = frame[list(C.COLUMNS[1:])].to_numpy(dtype=np.float64)[order]
    rows = [[str(pid)] + ["" if math.isnan(v) else f"{v:.6g}" for v in values[r]]
            for r, pid in enumerate(template[C.PATIENT_COLUMN])]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(path, list(C.COLUMNS), rows)
    return path


def read_uncertainty(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``predictions_uncertainty.csv``: ``[P, 90]``, ``Patient_ID`` as text, every score column float64
    (NaN where empty). Raises :class:`Ra2Error` naming the file for a missing file or column, a non-numeric or
    a negative spread."""
    what = "uncertainty CSV"
    path = Path(path)
    if not path.is_file():
        raise Ra2Error(f"{path}: no such file")
    table = _load_table(path, what)
    missing = [c for c in C.COLUMNS if c not in table.header]
    if missing:
        raise Ra2Error(f"{path}: missing column(s) {', '.join(missing[:3])}")
    index = [table.header.index(c) for c in C.COLUMNS[1:]]
    values = np.empty((len(table.rows), len(index)), dtype=np.float64)
    for r, (line, row) in enumerate(table.rows):
        for c, i in enumerate(index):
            x = _parse_number(row[i])
            if x is None or x < 0:
                kind = "a non-numeric" if x is None else "a negative"
                raise Ra2Error(f"{path}, line {line}, column {C.COLUMNS[c + 1]!r}: {kind} spread value {row[i]!r}")
            values[r, c] = x
    ids = [row[table.header.index(C.PATIENT_COLUMN)] for _, row in table.rows]
    return _score_frame(ids, values, C.COLUMNS[1:])


# --------------------------------------------------------------------------------------------------
# Validation of a predictions file
# --------------------------------------------------------------------------------------------------
def validate_predictions(pred_path: str | os.PathLike, template_path: str | os.PathLike) -> list[str]:
    """Check a ``predictions.csv`` against its template; return one line per problem (empty: valid).

    Reported: unreadable/empty CSV, rows with the wrong number of fields, duplicate/missing/extra
    columns, wrong column order, empty/duplicate/missing/extra patients, renamed patients (a row whose
    id is not in the template where the template's row at the same position is missing from the
    predictions: reported once as renamed, not as one missing and one extra), and per cell: empty/NaN,
    non-numeric, infinite and negative values (at most :data:`MAX_CELL_PROBLEMS` cell lines, then a
    count). A broken predictions file never raises; a broken template raises :class:`Ra2Error` (there is
    nothing to validate against).
    """
    template = read_template_csv(template_path)
    pred_path = Path(pred_path)
    try:
        table = _load_table(pred_path, "predictions CSV")
    except Ra2Error as exc:
        return [str(exc)]
    problems: list[str] = []
    expected = tuple(template.columns)
    problems.extend(_column_problems(table.header, expected, "the template"))
    if C.PATIENT_COLUMN not in table.header:
        return problems
    pid_col = table.header.index(C.PATIENT_COLUMN)
    template_ids = [str(x) for x in template[C.PATIENT_COLUMN]]
    template_set = set(template_ids)
    pred_ids = [row[pid_col] for _, row in table.rows]
    pred_set = set(pred_ids)

    first_line: dict[str, int] = {}
    for (line, _), pid in zip(table.rows, pred_ids):
        if not pid.strip():
            problems.append(f"line {line}: empty Patient_ID")
        elif pid in first_line:
            problems.append(f"line {line}: duplicate patient {pid!r} (first on line {first_line[pid]})")
        else:
            first_line[pid] = line

    renamed_pred: set[str] = set()
    renamed_template: set[str] = set()
    for pos, ((line, _), pid) in enumerate(zip(table.rows, pred_ids)):
        if pid in template_set or not pid.strip() or pos >= len(template_ids):
            continue
        expected_id = template_ids[pos]
        if expected_id not in pred_set:
            problems.append(f"line {line}: renamed patient {pid!r}: the template's row {pos + 1} is "
                            f"{expected_id!r} (Patient_ID must be left untouched)")
            renamed_pred.add(pid)
            renamed_template.add(expected_id)
    for pid in template_ids:
        if pid not in pred_set and pid not in renamed_template:
            problems.append(f"missing patient {pid!r} (in the template, not in the predictions)")
    for (line, _), pid in zip(table.rows, pred_ids):
        first = first_line.get(pid) == line
        if pid.strip() and pid not in template_set and pid not in renamed_pred and first:
            problems.append(f"line {line}: extra patient {pid!r} (not in the template)")

    cell_problems = 0
    score_cols = [(i, col) for i, col in enumerate(table.header)
                  if col != C.PATIENT_COLUMN and col in expected and table.header.index(col) == i]
    for (line, row), pid in zip(table.rows, pred_ids):
        for i, col in score_cols:
            text = row[i]
            x = _parse_number(text)
            if x is None:
                msg = f"not numeric: {text!r}"
            elif math.isnan(x):
                msg = "empty cell" if not text.strip() else f"NaN ({text!r})"
            elif math.isinf(x):
                msg = f"infinite value {text!r}"
            elif x < 0:
                msg = f"negative value {x:g}"
            else:
                continue
            cell_problems += 1
            if cell_problems <= MAX_CELL_PROBLEMS:
                problems.append(f"line {line}, patient {pid!r}, column {col!r}: {msg}")
    if cell_problems > MAX_CELL_PROBLEMS:
        problems.append(f"... and {cell_problems - MAX_CELL_PROBLEMS} more cell problems not listed")
    return problems


# --------------------------------------------------------------------------------------------------
# Films
# --------------------------------------------------------------------------------------------------
def find_film(folder: str | os.PathLike, patient_id: str, limb: str) -> Path:
    """The film of one patient's limb in ``folder``.

    Tries ``contract.film_name(patient_id, limb)`` (``{id}-{limb}.jpg``) first, then the other
    :data:`FILM_EXTENSIONS`, each in lower then upper case. A ``Patient_ID`` with leading or trailing
    spaces (a padded template cell) is tried as written, then stripped. Raises :class:`Ra2Error` naming
    the folder and the names tried when none exists.

    A film is only ever looked for inside ``folder``: a ``Patient_ID`` holding a path separator (``/``,
    ``\\``) or a NUL byte, e.g. ``../other``, raises :class:`Ra2Error` ("not a safe file name") before the
    file system is touched, so it is treated like any film that cannot be found (:mod:`ra2.pipeline.films`
    then predicts that patient's joints from its fallback). ``..`` without a separator is harmless: the
    name becomes ``..-LH.jpg``, a file inside ``folder``.
    """
    folder = Path(folder)
    if limb not in C.LIMBS:
        raise Ra2Error(f"unknown limb {limb!r}; expected one of {', '.join(C.LIMBS)}")
    unsafe = [ch for ch in ("/", "\\", "\x00", os.sep, os.altsep) if ch and ch in patient_id]
    if unsafe:
        raise Ra2Error(f"film of patient {patient_id!r} ({C.LIMB_NAMES[limb]}): the Patient_ID is not a safe "
                       f"file name (it holds {unsafe[0]!r}); no film is read outside {folder}")
    if not folder.is_dir():
        raise Ra2Error(f"film folder {folder}: not found")
    names = [patient_id] + ([patient_id.strip()] if patient_id.strip() not in ("", patient_id) else [])
    tried = []
    for name in names:
        for ext in FILM_EXTENSIONS:
            for variant in (ext, ext.upper()):
                candidate = folder / C.film_name(name, limb, variant)
                if variant == ext:
                    tried.append(candidate.name)
                if candidate.is_file():
                    return candidate
    raise Ra2Error(f"film of patient {patient_id!r} ({C.LIMB_NAMES[limb]}) not found in {folder}: "
                   f"tried {', '.join(tried)} (any case)")


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def read_film(path: str | os.PathLike) -> np.ndarray:
    """Read a radiograph as a grey image ``[H, W]`` float32 in [0, 1] (0 black, 1 white; bone bright).

    Accepted: 8/16-bit JPEG, PNG, TIFF (first page), grey, RGB, RGBA, LA, palette and 1-bit images, and
    DICOM (uncompressed, or compressed where pydicom has a decoder). Intensity mapping:

    - integer pixels are divided by their type's full range (8-bit: 255, 16-bit: 65535), so a film
      keeps its absolute levels; a 32-bit integer image (Pillow mode ``I``) whose values fit 16 bits is
      divided by 65535, otherwise min-max scaled; float images already in [0, 1] are kept, others
      min-max scaled (a constant image becomes all zeros);
    - colour: RGB(A) -> luminance ``0.299 R + 0.587 G + 0.114 B`` (alpha dropped); palette -> its RGB;
      LA -> L;
    - DICOM: the modality transform (Rescale Slope/Intercept or Modality LUT) is applied, then the full
      range of values the stored bits can hold (``BitsStored``, signed or not) mapped through the same
      transform becomes [0, 1], its smallest modality value black (so a negative slope flips the
      image); ``MONOCHROME1`` (bright = low values) is inverted so that bone is bright.

    EXIF orientation is not applied (the challenge's films are stored upright). The file's content, not
    its extension, decides the decoder: a PNG or DICOM file named ``.jpg`` is read as what it is.

    Size: a film whose longer side exceeds :data:`MAX_FILM_SIDE` is downscaled at read by the smallest
    integer factor ``f`` that brings it within, to ``[ceil(H / f), ceil(W / f)]``, each pixel the mean of
    its ``f x f`` block (a JPEG is decoded at 1/2, 1/4 or 1/8 scale by the decoder itself where that
    suffices, so its full-size pixels are never held in memory; other formats are decoded, reduced by
    Pillow, then converted). Boxes found on a downscaled film are in its own pixels, like any film's.
    Memory is bounded by Pillow's decompression-bomb guard: a film of more than
    ``2 * PIL.Image.MAX_IMAGE_PIXELS`` pixels (about 179 Mpx, e.g. 13,400 x 13,400, with Pillow's
    default) is refused with a one-line :class:`Ra2Error`, not read, because Pillow will not open it
    without switching its guard off for the whole process, and no radiograph is that large (a forged
    header is the likelier cause); the same limit applies to DICOM. A film between ``MAX_IMAGE_PIXELS``
    and twice that is read and downscaled, and Pillow's ``DecompressionBombWarning`` for it is silenced
    (the rule above is the answer to it).

    Raises :class:`Ra2Error` naming the file when it is missing, empty, unreadable, truncated or too
    large.
    """
    path = Path(path)
    if not path.exists():
        raise Ra2Error(f"film {path}: file not found")
    if not path.is_file():
        raise Ra2Error(f"film {path}: not a file")
    if path.stat().st_size == 0:
        raise Ra2Error(f"film {path}: empty file (0 bytes)")
    try:
        image = _read_dicom(path) if _is_dicom(path) else _read_bitmap(path)
    except Ra2Error:
        raise
    except Exception as exc:  # every decoder failure is a bad file from the user's point of view
        raise Ra2Error(f"film {path}: unreadable image ({type(exc).__name__}: {exc})") from None
    if image.ndim != 2 or image.shape[0] < 1 or image.shape[1] < 1:
        raise Ra2Error(f"film {path}: expected a 2-D image, got shape {image.shape}")
    return np.ascontiguousarray(np.clip(image, 0.0, 1.0) + 0.0, dtype=np.float32)  # + 0.0: no -0.0


def _scale_unknown(a: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] (float64); a constant image becomes zeros."""
    a = a.astype(np.float64)
    lo, hi = float(np.min(a)), float(np.max(a))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise Ra2Error("image holds non-finite pixel values")
    if hi <= lo:
        return np.zeros_like(a)
    return (a - lo) / (hi - lo)


def _to_unit(a: np.ndarray) -> np.ndarray:
    """Pixel array (any numeric dtype) -> float in [0, 1] by the rule in :func:`read_film`.

    8/16-bit input gives float32 (exact for these levels, half the memory of float64 on big films)."""
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(a.dtype, np.integer):
        if a.size and a.min() >= 0 and a.max() <= 65535:
            return a.astype(np.float32) / np.float32(65535.0)
        return _scale_unknown(a)
    if np.issubdtype(a.dtype, np.floating):
        if a.size and np.all(np.isfinite(a)) and a.min() >= 0.0 and a.max() <= 1.0:
            return a.astype(np.float64)
        return _scale_unknown(a)
    raise Ra2Error(f"unsupported pixel type {a.dtype}")


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] float in [0, 1] -> [H, W] luminance (same float type as the input)."""
    return rgb[..., :3] @ _LUMA.astype(rgb.dtype)


def _pixel_limit() -> int | None:
    """Pixels above which a film is refused: Pillow's decompression-bomb error threshold, twice
    ``PIL.Image.MAX_IMAGE_PIXELS`` (read at call time; None when a user switched the guard off)."""
    from PIL import Image

    return None if Image.MAX_IMAGE_PIXELS is None else 2 * int(Image.MAX_IMAGE_PIXELS)


def _downscale_factor(height: int, width: int) -> int:
    """Smallest integer f with ``max(ceil(height / f), ceil(width / f)) <= MAX_FILM_SIDE``."""
    return max(1, -(-max(height, width) // MAX_FILM_SIDE))


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """``[H, W]`` -> ``[ceil(H / f), ceil(W / f)]`` float32: the mean of each ``f x f`` block (the last
    row/column of blocks: the mean of the pixels they have)."""
    if f == 1:
        return a
    rows, cols = np.arange(0, a.shape[0], f), np.arange(0, a.shape[1], f)
    sums = np.add.reduceat(np.add.reduceat(a, rows, axis=0, dtype=np.float64), cols, axis=1)
    counts = np.outer(np.diff(np.append(rows, a.shape[0])), np.diff(np.append(cols, a.shape[1])))
    return (sums / counts).astype(np.float32)


def _open_image(path: Path):
    """``PIL.Image.open`` with Pillow's decompression-bomb guard turned into :class:`Ra2Error`."""
    from PIL import Image

    with warnings.catch_warnings():
        # A film past MAX_IMAGE_PIXELS (but not twice that) is read and downscaled by read_film's rule.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError as exc:
            raise Ra2Error(f"film {path}: refused, more than {_pixel_limit()} pixels, Pillow's "
                           f"decompression-bomb limit ({exc})") from None


def _read_bitmap(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with _open_image(path) as opened:
            opened.seek(0)
            width, height = opened.size
            f = _downscale_factor(height, width)
            target = (-(-width // f), -(-height // f))
            if f > 1 and opened.format == "JPEG":
                opened.draft(opened.mode, target)  # DCT scaling: decode at 1/2, 1/4 or 1/8 size
            im = opened
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode == "PA":
                im = im.convert("RGBA")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            if im.size != target:
                # Pillow cannot reduce these modes; alpha is dropped first (it is ignored anyway, and
                # Pillow would otherwise average premultiplied colours).
                shrinkable = {"1": "L", "RGBA": "RGB", "RGBX": "RGB", "RGBa": "RGB", "LA": "L", "La": "L"}
                if im.mode in shrinkable:
                    im = im.convert(shrinkable[im.mode])
                elif im.mode.startswith("I;16"):
                    im = im.convert("I")
                if im.size == (width, height):
                    im = im.reduce(f)  # exact f x f block means
                else:  # the JPEG decoder already scaled it: box-filter the rest of the way
                    im = im.resize(target, Image.Resampling.BOX)
            mode = im.mode
            a = np.asarray(im)
    except UnidentifiedImageError:
        raise Ra2Error(f"film {path}: not an image file Pillow can read") from None
    except OSError as exc:
        raise Ra2Error(f"film {path}: unreadable or truncated image ({exc})") from None
    if mode in ("RGB", "RGBA", "RGBX", "RGBa"):
        return _luminance(_to_unit(a[..., :3]))
    if mode in ("LA", "La"):
        return _to_unit(a[..., 0])
    if a.ndim == 3 and a.shape[2] >= 3:  # other multi-band layouts: treat the first three as RGB
        return _luminance(_to_unit(a[..., :3]))
    if a.ndim == 3 and a.shape[2] in (1, 2):
        a = a[..., 0]
    # Pillow marks big-endian 16-bit data ("I;16B") with a non-native dtype; make it native.
    return _to_unit(a.astype(a.dtype.newbyteorder("=")))


def _read_dicom(path: Path) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(path, defer_size=2 ** 16)  # pixel bytes read only once the size is known
    except InvalidDicomError as exc:
        raise Ra2Error(f"film {path}: not a valid DICOM file ({exc})") from None
    if "PixelData" not in ds:
        raise Ra2Error(f"film {path}: DICOM file without pixel data")
    pixels, limit = int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0), _pixel_limit()
    if limit is not None and pixels > limit:
        raise Ra2Error(f"film {path}: refused, {ds.Columns} x {ds.Rows} = {pixels} pixels, more than "
                       f"{limit}, Pillow's decompression-bomb limit (applied to DICOM too)")
    try:
        stored = ds.pixel_array
    except Exception as exc:
        raise Ra2Error(f"film {path}: cannot decode DICOM pixel data "
                       f"(transfer syntax {ds.file_meta.get('TransferSyntaxUID', '?')}: {exc})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        stored = stored[0]
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        if stored.ndim == 3 and stored.shape[-1] >= 3:
            if photometric.startswith("YBR"):
                from pydicom.pixels import convert_color_space

                stored = convert_color_space(stored, photometric, "RGB")
            grey = _luminance(_to_unit(stored))
            return _block_mean(grey, _downscale_factor(*grey.shape))
        raise Ra2Error(f"film {path}: unsupported DICOM photometric interpretation {photometric}")
    if stored.ndim != 2:
        raise Ra2Error(f"film {path}: expected one grey frame, got pixel array shape {stored.shape}")
    values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    bits = int(ds.get("BitsStored", stored.dtype.itemsize * 8))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        lo_stored, hi_stored = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo_stored, hi_stored = 0, 2 ** bits - 1
    ends = np.asarray(apply_modality_lut(np.array([lo_stored, hi_stored], dtype=np.int64), ds),
                      dtype=np.float64)
    # Higher modality values are brighter (MONOCHROME2), so the smaller end is black: with a negative
    # slope the highest stored value becomes the darkest.
    lo, hi = float(ends.min()), float(ends.max())
    if hi == lo:
        unit = _scale_unknown(values)
    else:
        unit = (values - lo) / (hi - lo)
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit
    return _block_mean(np.clip(unit, 0.0, 1.0), _downscale_factor(*unit.shape))
