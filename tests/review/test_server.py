"""The review server over HTTP without a browser: the page and its files, the JSON state, PNG films and crops, a
correction answered with the progress, and every bad request answered with a one-line JSON error and no change."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from review_run import fake_run

from ra2.contract import JOINT_COLUMNS
from ra2.review.run import open_run
from ra2.review.server import ReviewApp, make_server
from ra2.review.store import LOG_FILE, REVIEWED_FILE, ReviewStore


@pytest.fixture
def served(phantom, tmp_path):
    run_dir = fake_run(phantom, tmp_path / "run")
    app = ReviewApp(ReviewStore(open_run(run_dir, phantom / "test", phantom / "gold.csv")), "ann")
    server = make_server(app, 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", run_dir, app
    server.shutdown()
    server.server_close()


def _get(url, headers=None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return r.status, r.headers["Content-Type"], r.read()


def _post(url, body, ctype="application/json", headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + "/api/action", data=data, headers={"Content-Type": ctype, **(headers or {})},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_page_state_films_crops_and_a_correction(served):
    url, _, _ = served
    status, ctype, page = _get(url + "/")
    assert status == 200 and ctype.startswith("text/html") and b"/static/review.js" in page
    for name, kind in (("review.js", "javascript"), ("review.css", "css")):
        assert kind in _get(f"{url}/static/{name}")[1]
    state = json.loads(_get(url + "/api/state")[2])
    assert state["reader"] == "ann" and state["has_gold"] and state["progress"]["flagged"] == 17
    spreads = [p["max_spread"] for p in state["patients"]]
    assert spreads == sorted(spreads, reverse=True)
    pid = state["patients"][0]["patient"]
    doc = json.loads(_get(f"{url}/api/patient?id={pid}")[2])
    flags = [j["flagged"] for j in doc["joints"]]
    assert flags == sorted(flags, reverse=True) and len(doc["joints"]) == 86  # flagged joints first
    lh = next(f for f in doc["films"] if f["limb"] == "LH")
    assert lh["height"] > 0 and {b["source"] for b in lh["boxes"]} == {"detected", "reassigned", "layout"}
    status, ctype, png = _get(f"{url}/api/film?patient={pid}&limb=LH")
    assert ctype == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    status, ctype, png = _get(f"{url}/api/crop?patient={pid}&site=LH_pip__2")
    assert ctype == "image/png" and png[:4] == b"\x89PNG"
    j = doc["joints"][0]
    status, answer = _post(url, {"kind": "score", "patient": pid, "joint": j["joint"], "old": j["predicted"],
                                 "new": 1})
    assert status == 200 and answer["event"]["reader"] == "ann" and answer["progress"]["reviewed"] == 1
    assert answer["progress"]["flagged_reviewed"] == 1


def test_bad_requests_get_one_line_and_change_nothing(served):
    url, run_dir, app = served
    pid = app.run.patient_ids[0]
    col = JOINT_COLUMNS.index("LH_pip_J__2")
    good = {"kind": "score", "patient": pid, "joint": "LH_pip_J__2", "old": float(app.store.values[0, col]), "new": 2}
    assert _post(url, good)[0] == 200  # the files exist; what follows must leave them as they are
    good["old"] = 2
    before = {n: (run_dir / n).read_bytes() for n in (LOG_FILE, REVIEWED_FILE)}
    bad = [
        ({**good, "new": 9}, 400), ({**good, "patient": "ZZZ"}, 404), ({**good, "joint": "XX"}, 404),
        (b"{not json", 400), (b"[1, 2]", 400), ({**good, "kind": None}, 400),
    ]
    for body, status in bad:
        got, doc = _post(url, body)
        assert got == status and set(doc) == {"error"} and doc["error"] and "\n" not in doc["error"], (body, doc)
    got, doc = _post(url, good, ctype="text/plain")
    assert got == 415 and "application/json" in doc["error"]
    for path, status in (("/api/patient?id=ZZZ", 404), ("/api/film?patient=ZZZ&limb=LH", 404),
                         (f"/api/film?patient={pid}&limb=XX", 404), (f"/api/crop?patient={pid}&site=nope", 404),
                         ("/etc/passwd", 404), ("/static/../store.py", 404)):
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(url + path)
        assert err.value.code == status and "\n" not in json.loads(err.value.read())["error"]
    # another site: a domain pointed at 127.0.0.1 (DNS rebinding) or a page posting from elsewhere
    port = url.rsplit(":", 1)[1]
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(f"{url}/api/state", headers={"Host": f"evil.example:{port}"})
    assert err.value.code == 403 and "127.0.0.1" in json.loads(err.value.read())["error"]
    got, doc = _post(url, good, headers={"Origin": "http://evil.example"})
    assert got == 403 and "\n" not in doc["error"]
    assert _get(f"{url}/api/state", headers={"Host": f"localhost:{port}"})[0] == 200
    assert {n: (run_dir / n).read_bytes() for n in (LOG_FILE, REVIEWED_FILE)} == before
