// ra2 review: the reader's page. Plain JavaScript, no build step, no network beyond this server (127.0.0.1).
// Boxes are [y1, x1, y2, x2] in pixels of the original film; each film's SVG viewBox is the film's own size, so
// they are drawn, and drawn boxes read back, in those pixels.
"use strict";

const S = { app: null, pi: 0, patient: null, sel: 0, pending: null, digitAt: 0, drawing: false, done: 0 };
const $ = (sel) => document.querySelector(sel);
const SVGNS = "http://www.w3.org/2000/svg";

// Every answered action (accepted or refused) counts once in body[data-done], after the page shows its outcome.
function settled() { S.done += 1; document.body.dataset.done = String(S.done); }

// Every key and click goes through one queue: what the reader types while a save and its reload are under way
// acts, in order, on the page as it is after them (on the next joint), never on the joint just saved.
let queue = Promise.resolve();
function later(action) {
  queue = queue.then(action).catch((e) => say(`error: ${e.message}`, "error"));
  return queue;
}

// A joint's row index in the patient shown now, by its column name (-1 when absent).
function rowOf(name) { return S.patient.joints.findIndex((j) => j.joint === name); }

function say(text, kind) {
  const m = $("#msg");
  m.textContent = text;
  m.className = kind || "";
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const doc = await r.json();
  if (!r.ok) throw new Error(doc.error || r.statusText);
  return doc;
}

async function post(action) {
  const r = await fetch("/api/action", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(action),
  });
  let doc;
  try { doc = await r.json(); } catch (e) { doc = { error: r.status + " " + r.statusText }; }
  return { ok: r.ok, status: r.status, doc };
}

function fmt(x, digits) {
  if (x === null || x === undefined) return "\u2013";
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}

function showProgress() {
  const p = S.app.progress;
  $("#progress").textContent = `flagged reviewed ${p.flagged_reviewed}/${p.flagged} \u00b7 joints reviewed ` +
    `${p.reviewed}/${p.joints} \u00b7 boxes marked ${p.boxes_marked}`;
}

function renderPatients() {
  const ol = $("#patients");
  ol.textContent = "";
  S.app.patients.forEach((p, i) => {
    const li = document.createElement("li");
    li.dataset.patient = p.patient;
    li.className = i === S.pi ? "current" : "";
    li.innerHTML = `<b></b><br><small>spread ${fmt(p.max_spread, 2)} \u00b7 flagged ${p.flagged_reviewed}/` +
      `${p.flagged} \u00b7 reviewed ${p.reviewed}</small>`;
    li.querySelector("b").textContent = p.patient;
    li.onclick = () => later(() => openPatient(i, null));
    ol.appendChild(li);
  });
}

async function refreshState() {
  S.app = await getJSON("/api/state");
  document.body.classList.toggle("no-gold", !S.app.has_gold);
  $("#reader").textContent = "reader: " + S.app.reader;
  showProgress();
  renderPatients();
}

function joint() { return S.patient ? S.patient.joints[S.sel] : null; }

function boxOf(site) {
  for (const f of S.patient.films) for (const b of f.boxes) if (b.site === site) return b;
  return null;
}

function boxState(site) { const b = boxOf(site); return b ? b.state : "ok"; }

function renderFilms() {
  const holder = $("#films");
  holder.textContent = "";
  const pid = S.patient.patient;
  for (const f of S.patient.films) {
    const div = document.createElement("div");
    div.className = "film";
    div.dataset.limb = f.limb;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = f.limb;
    if (!f.width) {
      const none = document.createElement("div");
      none.className = "none";
      none.textContent = "no film";
      div.append(none, label);
      holder.appendChild(div);
      continue;
    }
    const svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("viewBox", `0 0 ${f.width} ${f.height}`);
    svg.style.width = Math.round(300 * f.width / f.height) + "px";
    const img = document.createElementNS(SVGNS, "image");
    img.setAttribute("href", `/api/film?patient=${encodeURIComponent(pid)}&limb=${f.limb}`);
    img.setAttribute("width", f.width);
    img.setAttribute("height", f.height);
    svg.appendChild(img);
    for (const b of f.boxes) {
      const box = Array.isArray(b.state) ? b.state : b.box;
      const r = document.createElementNS(SVGNS, "rect");
      r.setAttribute("x", box[1]); r.setAttribute("y", box[0]);
      r.setAttribute("width", box[3] - box[1]); r.setAttribute("height", box[2] - box[0]);
      const cls = b.state === "wrong" ? "wrong" : Array.isArray(b.state) ? "drawn" : b.source;
      r.setAttribute("class", "box " + cls);
      r.dataset.site = b.site;
      const t = document.createElementNS(SVGNS, "title");
      t.textContent = `${b.site} (${cls})`;
      r.appendChild(t);
      r.addEventListener("click", (e) => {
        if (S.drawing) return;
        e.stopPropagation();
        later(() => {
          const i = S.patient.joints.findIndex((j) => j.site === b.site);
          if (i >= 0) select(i);
        });
      });
      svg.appendChild(r);
    }
    attachDrawing(svg, f);
    div.append(svg, label);
    holder.appendChild(div);
  }
}

// The drag in progress: where it started and its rubber box; cleared by setDrawing(false) (Esc, a new selection).
const drag = { start: null, rubber: null };
function clearDrag() {
  if (drag.rubber) drag.rubber.remove();
  drag.start = null; drag.rubber = null;
}

function attachDrawing(svg, film) {
  const at = (e) => {
    const pt = svg.createSVGPoint();
    pt.x = e.clientX; pt.y = e.clientY;
    const p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return [Math.min(Math.max(p.y, 0), film.height), Math.min(Math.max(p.x, 0), film.width)];
  };
  svg.addEventListener("mousedown", (e) => {
    const j = joint();
    if (!S.drawing || !j || j.limb !== film.limb) return;
    e.preventDefault();
    clearDrag();
    drag.start = at(e);
    drag.rubber = document.createElementNS(SVGNS, "rect");
    drag.rubber.setAttribute("class", "rubber");
    svg.appendChild(drag.rubber);
    const start = drag.start, rubber = drag.rubber;
    const move = (ev) => {
      if (drag.start !== start) return;
      const [y, x] = at(ev);
      rubber.setAttribute("x", Math.min(x, start[1])); rubber.setAttribute("y", Math.min(y, start[0]));
      rubber.setAttribute("width", Math.abs(x - start[1])); rubber.setAttribute("height", Math.abs(y - start[0]));
    };
    // the drag ends wherever the button is let go (outside the film too: the box is clamped to the film)
    const up = (ev) => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      if (drag.start !== start) return;  // cancelled meanwhile (Esc, another joint)
      const [y, x] = at(ev);
      const box = [Math.min(y, start[0]), Math.min(x, start[1]), Math.max(y, start[0]), Math.max(x, start[1])]
        .map((v) => Math.round(v * 100) / 100);
      const site = joint().site;
      setDrawing(false);
      later(() => sendBox(box, site));
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  });
}

function renderCrops() {
  const holder = $("#crops");
  holder.textContent = "";
  const seen = new Set();
  S.patient.joints.forEach((j, i) => {
    if (seen.has(j.site)) return;
    seen.add(j.site);
    const fig = document.createElement("figure");
    fig.dataset.site = j.site;
    if (j.flagged) fig.classList.add("flagged");
    const img = document.createElement("img");
    img.alt = j.site;
    // the box state in the URL: a crop is cached until its box changes
    img.src = `/api/crop?patient=${encodeURIComponent(S.patient.patient)}&site=${j.site}` +
      `&box=${encodeURIComponent(JSON.stringify(boxState(j.site)))}`;
    img.onerror = () => { fig.style.opacity = 0.3; };
    const cap = document.createElement("figcaption");
    cap.textContent = j.site.replace(/^(..)_/, "$1 ");
    fig.append(img, cap);
    fig.onclick = () => later(() => select(rowOf(j.joint)));
    holder.appendChild(fig);
  });
}

function renderTable() {
  const body = $("#joints tbody");
  body.textContent = "";
  S.patient.joints.forEach((j, i) => {
    const tr = document.createElement("tr");
    tr.dataset.joint = j.joint;
    tr.className = (j.flagged ? "flagged " : "") + (j.reviewed ? "reviewed" : "");
    const cells = [j.joint, fmt(j.predicted, 2), fmt(j.spread, 2), j.flagged ? "\u25cf flagged" : "",
      fmt(j.gold, 0), fmt(j.value, 2)];
    cells.forEach((text, c) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (c === 3) td.className = "flag";
      if (c === 4) td.className = "gold-col";
      if (c === 5) td.className = "value";
      tr.appendChild(td);
    });
    const buttons = document.createElement("td");
    for (let s = 0; s <= j.max; s++) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "s"; b.textContent = s;
      b.onclick = (e) => {
        e.stopPropagation();
        later(() => { select(rowOf(j.joint)); S.pending = s; return accept(); });
      };
      buttons.appendChild(b);
    }
    tr.appendChild(buttons);
    const boxTd = document.createElement("td");
    const st = boxState(j.site);
    const bb = document.createElement("button");
    bb.type = "button";
    bb.className = "boxbtn";
    bb.textContent = st === "wrong" ? "wrong (undo)" : Array.isArray(st) ? "drawn" : "mark wrong";
    bb.onclick = (e) => { e.stopPropagation(); later(() => { select(rowOf(j.joint)); return toggleBox(); }); };
    boxTd.appendChild(bb);
    tr.appendChild(boxTd);
    const who = document.createElement("td");
    who.textContent = j.reader || "";
    tr.appendChild(who);
    tr.onclick = () => later(() => select(rowOf(j.joint)));
    body.appendChild(tr);
  });
  highlight();
}

function highlight() {
  const j = joint();
  document.querySelectorAll("#joints tbody tr").forEach((tr, i) => {
    tr.classList.toggle("selected", i === S.sel);
    const v = tr.querySelector(".value");
    const jj = S.patient.joints[i];
    if (i === S.sel && S.pending !== null) {
      v.textContent = `${S.pending} \u21b5`;
      v.classList.add("pending");
    } else {
      v.textContent = fmt(jj.value, 2);
      v.classList.remove("pending");
    }
  });
  document.querySelectorAll("rect.box").forEach((r) => r.classList.toggle("selected", !!j && r.dataset.site === j.site));
  document.querySelectorAll("#crops figure").forEach((f) => f.classList.toggle("selected", !!j && f.dataset.site === j.site));
  const tr = document.querySelectorAll("#joints tbody tr")[S.sel];
  if (tr) tr.scrollIntoView({ block: "nearest" });
  if (S.patient && j) history.replaceState(null, "", `#p=${encodeURIComponent(S.patient.patient)}&j=${j.joint}`);
}

function select(i) {
  if (!S.patient) return;
  S.sel = Math.max(0, Math.min(S.patient.joints.length - 1, i));
  S.pending = null;
  setDrawing(false);
  highlight();
}

async function openPatient(i, jointName) {
  if (!S.app.patients.length) { say("no patient in this run", "error"); return; }
  S.pi = Math.max(0, Math.min(S.app.patients.length - 1, i));
  const pid = S.app.patients[S.pi].patient;
  try {
    S.patient = await getJSON(`/api/patient?id=${encodeURIComponent(pid)}`);
  } catch (e) { say(e.message, "error"); return; }
  $("#patient-title").textContent = `${pid} \u2014 ${S.patient.flagged} flagged joints, ` +
    `${S.patient.flagged_reviewed} of them reviewed`;
  renderPatients();
  renderFilms();
  renderCrops();
  renderTable();
  const k = jointName ? S.patient.joints.findIndex((j) => j.joint === jointName) : -1;
  select(k >= 0 ? k : 0);
}

async function reloadPatient() {
  const j = joint();
  await refreshState();
  const i = S.app.patients.findIndex((p) => p.patient === S.patient.patient);
  await openPatient(i >= 0 ? i : S.pi, j ? j.joint : null);
}

async function submit(action, done) {
  const res = await post(action);
  if (!res.ok) {
    say(`refused: ${res.doc.error}`, "error");
    if (res.status === 409) await reloadPatient();
    return false;
  }
  say(done, "ok");
  return true;
}

async function accept() {
  const j = joint();
  if (!j) return;
  const value = S.pending !== null ? S.pending : Math.min(j.max, Math.max(0, Math.round(j.value)));
  const ok = await submit({ kind: "score", patient: S.patient.patient, joint: j.joint, old: j.value, new: value },
    `saved ${S.patient.patient} ${j.joint}: ${fmt(j.value, 2)} \u2192 ${value}`);
  S.pending = null;
  if (ok) {
    const next = S.sel + 1;
    await reloadPatient();
    select(Math.min(next, S.patient.joints.length - 1));
  } else highlight();
  settled();
}

async function sendBox(newState, site) {
  const j = joint();
  if (!j) return;
  site = site || j.site;
  const ok = await submit({ kind: "box", patient: S.patient.patient, joint: site, old: boxState(site),
    new: newState }, `saved ${S.patient.patient} ${site}: box ${JSON.stringify(newState)}`);
  if (ok) await reloadPatient();
  settled();
}

function toggleBox() {
  const j = joint();
  if (!j) return;
  if (!boxOf(j.site)) { say(`${j.site} has no box on this film; draw one with d`, "error"); return; }
  return sendBox(boxState(j.site) === "wrong" ? "ok" : "wrong");
}

function setDrawing(on) {
  S.drawing = on;
  if (!on) clearDrag();
  const j = joint();
  document.querySelectorAll(".film").forEach((f) => f.classList.toggle("drawing", on && !!j && f.dataset.limb === j.limb));
  if (on) say(`drag a box for ${j.site} on the ${j.limb} film (Esc: cancel)`, "");
}

function typeDigit(d, now) {
  const j = joint();
  if (j.max >= 10 && S.pending === 1 && d === 0 && now - S.digitAt < 1000) S.pending = 10;
  else S.pending = d;
  S.digitAt = now;
  if (S.pending > j.max) say(`${S.pending} is above ${j.joint}'s range 0-${j.max}: Enter will be refused`, "error");
  highlight();
}

function step(delta) {
  const j = joint();
  const base = S.pending !== null ? S.pending : Math.round(j.value);
  S.pending = Math.min(j.max, Math.max(0, base + delta));
  highlight();
}

const KEYS = {
  ArrowDown: () => select(S.sel + 1), j: () => select(S.sel + 1),
  ArrowUp: () => select(S.sel - 1), k: () => select(S.sel - 1),
  ArrowRight: () => step(1), ArrowLeft: () => step(-1),
  Enter: () => accept(),
  Escape: () => { S.pending = null; setDrawing(false); say("", ""); highlight(); },
  b: () => toggleBox(), d: () => setDrawing(!S.drawing),
  n: () => openPatient(S.pi + 1, null), PageDown: () => openPatient(S.pi + 1, null),
  p: () => openPatient(S.pi - 1, null), PageUp: () => openPatient(S.pi - 1, null),
  "?": () => { $("#help").hidden = !$("#help").hidden; },
};

document.addEventListener("keydown", (e) => {
  if (!S.patient || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key, at = Date.now();
  const action = /^[0-9]$/.test(k) ? () => typeDigit(Number(k), at) : KEYS[k];
  if (!action) return;
  e.preventDefault();
  if (k === "Escape") clearDrag();  // at once: a drag in progress must not end as a box
  later(action);
});

$("#help-toggle").onclick = () => { $("#help").hidden = !$("#help").hidden; };

(async function start() {
  try {
    await refreshState();
  } catch (e) { say(`cannot reach the review server: ${e.message}`, "error"); return; }
  const h = new URLSearchParams(location.hash.slice(1));
  const i = S.app.patients.findIndex((p) => p.patient === h.get("p"));
  await openPatient(i >= 0 ? i : 0, h.get("j"));
  document.body.dataset.ready = "1";
})();
