"""weights/: every shipped file is listed in manifest.json with its size and sha256, and nothing else ships."""

import hashlib
import json
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
DOCS = {"manifest.json", "MODEL_CARD.md"}


def test_manifest_lists_exactly_the_shipped_files():
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    listed = {entry["path"]: entry for entry in manifest["files"]}
    on_disk = {p.relative_to(WEIGHTS).as_posix() for p in WEIGHTS.rglob("*")
               if p.is_file() and p.name not in DOCS}
    assert set(listed) == on_disk, "weights/ and manifest.json disagree"
    for path, entry in listed.items():
        data = (WEIGHTS / path).read_bytes()
        assert len(data) == entry["bytes"], path
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], path
        assert len(data) < 20 * 2**20, f"{path}: shipped weights must stay small"


def test_model_card_exists_and_disclaims_diagnostic_use():
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    assert "not for diagnostic use" in card.lower()
