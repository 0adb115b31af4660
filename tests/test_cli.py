"""`ra2 validate` and `ra2 score` through ra2.cli.main and once through `python -m ra2`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ra2 import contract as C
from ra2 import metrics as M
from ra2.cli import main

from csv_factory import score_frame, template_frame, write_csv

IDS = ["UAB001", "UAB002", "0003"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    """Paths of a template, a gold CSV and a valid predictions CSV for three patients."""
    write_csv(template_frame(IDS), tmp_path / "template.csv")
    gold = score_frame(IDS, seed=21)
    write_csv(gold, tmp_path / "gold.csv")
    pred = gold.copy()
    rng = np.random.default_rng(0)
    pred[list(C.COLUMNS[1:])] = gold[list(C.COLUMNS[1:])].to_numpy() + rng.uniform(0, 2, size=(3, 89))
    write_csv(pred, tmp_path / "predictions.csv")
    return {"template": tmp_path / "template.csv", "gold": tmp_path / "gold.csv",
            "pred": tmp_path / "predictions.csv", "frame": pred, "tmp": tmp_path}


def _validate(files, capsys):
    code = main(["validate", "--predictions", str(files["pred"]), "--template", str(files["template"])])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def test_validate_valid_file_exits_0(files, capsys):
    code, lines, err = _validate(files, capsys)
    assert code == 0 and lines == [f"{files['pred']}: valid"] and err == ""


def _renamed(df):
    df = df.copy()
    df.loc[1, C.PATIENT_COLUMN] = "UAB-002"
    return df


def _cell(value):
    def edit(df):
        df = df.astype({"RH_pip_J__4": object})
        df.loc[2, "RH_pip_J__4"] = value
        return df
    return edit


BROKEN = {
    "missing column": (lambda df: df.drop(columns=["LF_mtp_J__1"]), ["missing column 'LF_mtp_J__1'"]),
    "extra column": (lambda df: df.assign(Notes=0.0), ["extra column 'Notes'"]),
    "wrong column order": (
        lambda df: df[[C.COLUMNS[0], C.COLUMNS[2], C.COLUMNS[1]] + list(C.COLUMNS[3:])],
        ["wrong column order: column 2 is 'Overall_erosion', expected 'Overall_Tol' "
         "(the order of the template)"]),
    "missing patient": (lambda df: df.iloc[[0, 1]],
                        ["missing patient '0003' (in the template, not in the predictions)"]),
    "extra patient": (lambda df: pd.concat([df, score_frame(["UAB999"])], ignore_index=True),
                      ["line 5: extra patient 'UAB999' (not in the template)"]),
    "duplicate patient": (lambda df: pd.concat([df, df.iloc[[0]]], ignore_index=True),
                          ["line 5: duplicate patient 'UAB001' (first on line 2)"]),
    "renamed patient": (_renamed, ["line 3: renamed patient 'UAB-002': the template's row 2 is 'UAB002' "
                                   "(Patient_ID must be left untouched)"]),
    "NaN cell": (_cell("NaN"), ["line 4, patient '0003', column 'RH_pip_J__4': NaN ('NaN')"]),
    "empty cell": (_cell(""), ["line 4, patient '0003', column 'RH_pip_J__4': empty cell"]),
    "non-numeric cell": (_cell("two"), ["line 4, patient '0003', column 'RH_pip_J__4': not numeric: 'two'"]),
    "negative value": (_cell(-1.5), ["line 4, patient '0003', column 'RH_pip_J__4': negative value -1.5"]),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_validate_broken_file_exits_1_with_one_line_per_problem(files, capsys, kind):
    edit, expected = BROKEN[kind]
    write_csv(edit(files["frame"]), files["pred"])
    code, lines, err = _validate(files, capsys)
    assert code == 1 and lines == expected and err == ""


def test_validate_two_problems_two_lines(files, capsys):
    df = _cell("x")(files["frame"]).drop(columns=["LH_pip_E__3"])
    write_csv(df, files["pred"])
    code, lines, _ = _validate(files, capsys)
    assert code == 1
    assert lines == ["missing column 'LH_pip_E__3'",
                     "line 4, patient '0003', column 'RH_pip_J__4': not numeric: 'x'"]


@pytest.mark.parametrize("content", [None, "", "Patient_ID,Overall_Tol\nUAB001\nUAB002,1,2\n"])
def test_validate_unreadable_or_empty_csv(files, capsys, content):
    files["pred"].unlink()
    if content is not None:
        files["pred"].write_text(content)
    code, lines, err = _validate(files, capsys)
    assert code == 1 and len(lines) == 1 and str(files["pred"]) in lines[0] and err == ""


def test_score_json_keys_and_values(files, capsys):
    code = main(["score", "--predictions", str(files["pred"]), "--gold", str(files["gold"]), "--json"])
    out = capsys.readouterr().out
    result = json.loads(out)
    assert code == 0
    assert set(result) == set(M.SCORE_KEYS) and len(result) == 9
    expected = M.score(files["frame"], score_frame(IDS, seed=21))
    for key in M.SCORE_KEYS:
        assert result[key] == pytest.approx(expected[key], abs=1e-12)


def test_score_text_output_prints_na(files, capsys):
    df = files["frame"].copy()
    df[list(C.NARROWING_COLUMNS)] = 0.0
    write_csv(df, files["pred"])
    assert main(["score", "--predictions", str(files["pred"]), "--gold", str(files["gold"])]) == 0
    lines = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert lines["sc2"] == "NA" and lines["sc2_hand"] == "NA" and float(lines["sc3"]) > 0


def test_user_error_prints_one_line(files, capsys):
    code = main(["score", "--predictions", str(files["pred"]), "--gold", str(files["tmp"] / "missing.csv")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("ra2: error: gold CSV ") and "file not found" in err
    files["template"].write_text("Overall_Tol\n1\n")  # a template without Patient_ID
    code, lines, err = _validate(files, capsys)
    assert code == 1 and lines == [] and err.startswith("ra2: error: template CSV ") and err.count("\n") == 1


def test_python_dash_m_ra2(files):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    write_csv(BROKEN["renamed patient"][0](files["frame"]), files["pred"])
    run = subprocess.run([sys.executable, "-m", "ra2", "validate", "--predictions", str(files["pred"]),
                          "--template", str(files["template"])], capture_output=True, text=True, env=env)
    assert run.returncode == 1 and run.stdout.splitlines() == BROKEN["renamed patient"][1]
    run = subprocess.run([sys.executable, "-m", "ra2", "score", "--predictions", str(files["pred"]),
                          "--gold", str(files["gold"]), "--json"], capture_output=True, text=True, env=env)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [run.stderr.strip()]
    assert run.stderr.startswith("ra2: error: ") and "missing gold patient(s) 'UAB002'" in run.stderr
