"""The review's web server: the standard library's threading HTTP server on 127.0.0.1, no network, no build step.

Routes (every error answer is JSON ``{"error": "<one line>"}`` with its status):

- ``GET /`` the page (``static/review.html``); ``GET /static/review.js``, ``/static/review.css``.
- ``GET /api/state``: the reader, whether gold scores are shown, the progress and the patients, most uncertain
  first (``patient``, ``max_spread``, ``flagged``, ``flagged_reviewed``, ``reviewed``).
- ``GET /api/patient?id=P``: :meth:`ra2.review.store.ReviewStore.patient_state` plus each film's size
  (``height``, ``width``: original-film pixels, the coordinates of every box) or null where the film is absent.
- ``GET /api/film?patient=P&limb=L``: the film as a grey PNG (longer side at most :data:`FILM_PNG_SIDE`; the page
  stretches it to the film's own size, so boxes stay in film pixels).
- ``GET /api/crop?patient=P&site=S``: the joint's crop (``CROP_SIDE`` px square PNG, the film's orientation) cut
  around its current box: a box the reader drew, else the run's.
- ``POST /api/action`` (``Content-Type: application/json``, so another web site cannot post into it without a
  preflight this server never grants): ``{"kind": "score"|"box", "patient", "joint", "old", "new"}``, answered
  with ``{"event", "progress"}``; refusals 400 / 404 / 409 (:class:`ra2.review.store.ReviewError`).
"""

from __future__ import annotations

import io as _io
import json
import logging
import threading
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

from ra2 import Ra2Error, contract
from ra2.review.store import ReviewError, ReviewStore

log = logging.getLogger("ra2.review")

HOST = "127.0.0.1"
STATIC = Path(__file__).with_name("static")
STATIC_TYPES = {"review.html": "text/html; charset=utf-8", "review.js": "text/javascript; charset=utf-8",
                "review.css": "text/css; charset=utf-8"}
FILM_PNG_SIDE = 1200
CROP_SIDE = 96
MAX_BODY = 64 * 1024


def _png(image: np.ndarray, side: int | None = None) -> bytes:
    """``image`` ``[H, W]`` float in [0, 1] -> 8-bit grey PNG bytes, the longer side reduced to ``side``."""
    from PIL import Image

    im = Image.fromarray(np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255), 0, 255).astype(np.uint8))
    if side is not None and max(im.size) > side:
        f = side / max(im.size)
        im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.Resampling.BILINEAR)
    buf = _io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


class ReviewApp:
    """The server's state: the store, the films (read once, a few kept), the reader's name."""

    def __init__(self, store: ReviewStore, reader: str):
        self.store = store
        self.reader = reader
        self.run = store.run
        self._films = lru_cache(maxsize=16)(self._read_film)
        self._film_lock = threading.Lock()
        store.film_shape = self.film_shape

    def _read_film(self, patient: str, limb: str) -> np.ndarray | None:
        from ra2.io import find_film, read_film

        try:
            return read_film(find_film(self.run.films_dir, patient, limb))
        except Ra2Error as exc:
            log.warning("%s", exc)
            return None

    def film(self, patient: str, limb: str) -> np.ndarray | None:
        """The film ``[H, W]`` float32 in [0, 1] (:func:`ra2.io.read_film`), or None when absent or unreadable."""
        with self._film_lock:
            return self._films(patient, limb)

    def film_shape(self, patient: str, limb: str) -> tuple[int, int] | None:
        film = self.film(patient, limb)
        return None if film is None else film.shape[:2]

    def state(self) -> dict:
        store = self.store
        patients = []
        for row in self.run.patient_order():
            s = self.run.spread[row]
            patients.append({"patient": self.run.patient_ids[row],
                             "max_spread": float(np.nanmax(s)) if np.isfinite(s).any() else None,
                             "flagged": int(self.run.flagged[row].sum()),
                             "flagged_reviewed": int((self.run.flagged[row] & store.reviewed[row]).sum()),
                             "reviewed": int(store.reviewed[row].sum())})
        return {"reader": self.reader, "has_gold": self.run.gold is not None, "progress": store.progress(),
                "patients": patients, "run": str(self.run.run_dir), "log": store.log_path.name,
                "events": len(store.events)}

    def patient(self, patient: str) -> dict:
        row = self.store._patient_row(patient)
        doc = self.store.patient_state(row)
        for film in doc["films"]:
            shape = self.film_shape(patient, film["limb"])
            film["height"], film["width"] = (None, None) if shape is None else (int(shape[0]), int(shape[1]))
        return doc

    def crop(self, patient: str, site_id: str) -> bytes:
        from ra2.detection.crops import cut_crop

        self.store._patient_row(patient)
        if site_id not in contract.SITE_BY_ID:
            raise ReviewError(404, f"unknown joint {site_id!r} (expected a site id such as LH_pip__2)")
        limb = contract.SITE_BY_ID[site_id].limb
        state = self.store.box_state(patient, site_id)
        box = state if isinstance(state, list) else self.run.boxes(patient, limb).get(site_id)
        film = self.film(patient, limb)
        if film is None or box is None:
            raise ReviewError(404, f"{patient} {site_id}: no film or no box to cut a crop from")
        return _png(cut_crop(film, box, CROP_SIDE, mirror=False))


class _Handler(BaseHTTPRequestHandler):
    server_version = "ra2-review"
    app: ReviewApp  # set on the subclass made by make_server

    def log_message(self, fmt, *args):  # the terminal is the reader's: requests go to the debug log
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, ctype: str, cache: bool = False) -> None:
        """``cache``: the answer never changes for its URL (films; crops, whose URL carries their box's state)."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private, max-age=3600" if cache else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: dict) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _foreign(self) -> bool:
        """True (and a 403 sent) for a request whose ``Host`` is not this server's own address, or a POST whose
        ``Origin`` is another site's: a web page the reader visits cannot reach the films and scores through a
        domain of its own that it points at 127.0.0.1 (DNS rebinding), nor post corrections from its page."""
        port = self.server.server_address[1]
        own = {f"{name}:{port}" for name in (HOST, "localhost")}
        host = self.headers.get("Host")
        origin = self.headers.get("Origin")
        if (host is not None and host not in own) or (origin is not None and origin not in
                                                       {f"http://{h}" for h in own}):
            self._error(HTTPStatus.FORBIDDEN, f"refused: this page is served to http://{HOST}:{port}/ only "
                                              f"(Host {host!r}, Origin {origin!r})")
            return True
        return False

    def do_GET(self):
        if self._foreign():
            return
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path in ("/", "/index.html"):
                return self._send(200, (STATIC / "review.html").read_bytes(), STATIC_TYPES["review.html"])
            if url.path.startswith("/static/") and url.path[8:] in STATIC_TYPES:
                name = url.path[8:]
                return self._send(200, (STATIC / name).read_bytes(), STATIC_TYPES[name])
            if url.path == "/favicon.ico":
                return self._send(204, b"", "image/x-icon")
            if url.path == "/api/state":
                return self._json(200, self.app.state())
            if url.path == "/api/patient":
                return self._json(200, self.app.patient(query.get("id", "")))
            if url.path == "/api/film":
                patient, limb = query.get("patient", ""), query.get("limb", "")
                self.app.store._patient_row(patient)
                if limb not in contract.LIMBS:
                    raise ReviewError(404, f"unknown limb {limb!r} (expected one of {', '.join(contract.LIMBS)})")
                film = self.app.film(patient, limb)
                if film is None:
                    raise ReviewError(404, f"no film of {patient} {limb} in {self.app.run.films_dir}")
                return self._send(200, _png(film, FILM_PNG_SIDE), "image/png", cache=True)
            if url.path == "/api/crop":
                return self._send(200, self.app.crop(query.get("patient", ""), query.get("site", "")), "image/png",
                                  cache=True)
            return self._error(404, f"no such page: {url.path}")
        except ReviewError as exc:
            return self._error(exc.status, str(exc))

    def do_POST(self):
        if self._foreign():
            return
        url = urlparse(self.path)
        if url.path != "/api/action":
            return self._error(404, f"no such action: {url.path}")
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return self._error(415, "send the action as Content-Type: application/json")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self._error(400, "bad Content-Length")
        if not 0 < length <= MAX_BODY:
            return self._error(413 if length > MAX_BODY else 400, f"the action must be 1 to {MAX_BODY} bytes of JSON")
        try:
            request = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._error(400, f"the action is not JSON ({exc})")
        if isinstance(request, dict) and not request.get("reader"):
            request["reader"] = self.app.reader
        try:
            event = self.app.store.submit(request)
        except ReviewError as exc:
            log.info("refused: %s", exc)
            return self._error(exc.status, str(exc))
        except Ra2Error as exc:  # the disk refused the log or the CSV: the reader must know
            log.error("%s", exc)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
        log.info("%s %s %s %s: %s -> %s", event["reader"], event["kind"], event["patient"], event["joint"],
                 json.dumps(event["old"]), json.dumps(event["new"]))
        return self._json(200, {"event": event, "progress": self.app.store.progress()})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A browser that drops a connection (a page re-rendered while its images were loading) is no error."""
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            log.debug("%s closed the connection early", client_address[0])
            return
        super().handle_error(request, client_address)


def make_server(app: ReviewApp, port: int = 0) -> ThreadingHTTPServer:
    """A threading HTTP server for ``app`` bound to 127.0.0.1:``port`` (0: any free port)."""
    handler = type("ReviewHandler", (_Handler,), {"app": app})
    try:
        server = _Server((HOST, port), handler)
    except OSError as exc:
        raise Ra2Error(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    return server


def serve(run_dir, films_dir, gold=None, port: int = 8765, reader: str = "reader") -> int:
    """``ra2 review``: open the run, hold its folder, serve until interrupted. Prints the address."""
    from ra2.review.run import open_run
    from ra2.review.store import hold_folder, write_session

    run = open_run(run_dir, films_dir, gold)
    lock = hold_folder(run.run_dir)
    try:
        store = ReviewStore(run)
        write_session(run, reader)
        app = ReviewApp(store, reader)
        server = make_server(app, port)
        host, bound = server.server_address[:2]
        progress = store.progress()
        print(f"ra2 review: {len(run.patient_ids)} patients, {progress['flagged']} flagged joints, "
              f"{progress['reviewed']} reviewed so far; log {store.log_path}", flush=True)
        print(f"ra2 review: http://{host}:{bound}/  (Ctrl-C stops; every accepted correction is already saved)",
              flush=True)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            print("ra2 review: stopped", flush=True)
        finally:
            server.server_close()
    finally:
        lock.close()
    return 0

