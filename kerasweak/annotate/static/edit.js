// kerasweak annotate: the editing half of the page (pointer and keyboard), loaded after app.js.
"use strict";

// ---------------------------------------------------------------- editing
function points() { return (S.keypoints[name()] = S.keypoints[name()] || []); }

function savePoints() { save("keypoints", points().map(([x, y, c]) => [round1(x), round1(y), c])); renderAll(); }

function deletePoint(i) {
  if (i < 0 || i >= points().length) return;
  points().splice(i, 1);
  S.selected = -1;
  savePoints();
}

function accept() {
  const sug = S.suggestions[name()];
  if (!sug) return;
  if (S.mode === "points") {
    const taken = (S.accepted[name()] = S.accepted[name()] || new Set());
    sug.points.forEach((p, i) => { if (!taken.has(i)) { taken.add(i); points().push(p.slice()); } });
    savePoints();
  } else if (S.mode === "proportions") {
    setPercents(toPercents(sug.proportions), true);
  } else if (S.mode === "size" && sug.size != null) {
    S.sizes[name()] = sug.size; save("size", sug.size); renderAll();
  }
}

let drag = null, space = false;
const vp = $("viewport");
vp.addEventListener("contextmenu", (ev) => {
  ev.preventDefault();
  if (ev.target.dataset.index !== undefined) deletePoint(Number(ev.target.dataset.index));
});
vp.addEventListener("pointerdown", (ev) => {
  if (ev.button === 1 || (ev.button === 0 && space)) {
    drag = { kind: "pan", x: ev.clientX, y: ev.clientY, panX: S.panX, panY: S.panY };
    vp.classList.add("panning");
  } else if (ev.button !== 0) {
    return;
  } else if (S.mode === "points" && ev.target.dataset.index !== undefined) {
    S.selected = Number(ev.target.dataset.index);
    drag = { kind: "point", i: S.selected, moved: false };
    renderOverlay();
  } else if (S.mode === "points" && ev.target.dataset.suggestion !== undefined) {
    const i = Number(ev.target.dataset.suggestion);
    (S.accepted[name()] = S.accepted[name()] || new Set()).add(i);
    points().push(S.suggestions[name()].points[i].slice());
    savePoints();
  } else if (S.mode === "points") {
    drag = { kind: "add", x: ev.clientX, y: ev.clientY, at: imagePoint(ev) };
  } else if (S.mode === "size" && inside(imagePoint(ev))) {
    drag = { kind: "size", at: imagePoint(ev), side: 0 };
  }
  if (drag) { vp.setPointerCapture(ev.pointerId); ev.preventDefault(); }
});
vp.addEventListener("pointermove", (ev) => {
  if (!drag) return;
  if (drag.kind === "pan") {
    S.panX = drag.panX + ev.clientX - drag.x; S.panY = drag.panY + ev.clientY - drag.y; transform();
  } else if (drag.kind === "point") {
    const p = imagePoint(ev), img = current();
    const pt = points()[drag.i];
    pt[0] = Math.min(Math.max(p[0], 0), img.width - 0.1); pt[1] = Math.min(Math.max(p[1], 0), img.height - 0.1);
    drag.moved = true;
    renderOverlay();
  } else if (drag.kind === "size") {
    const p = imagePoint(ev), img = current(), [x0, y0] = drag.at;
    const sx = Math.sign(p[0] - x0) || 1, sy = Math.sign(p[1] - y0) || 1;
    const room = Math.min(sx > 0 ? img.width - x0 : x0, sy > 0 ? img.height - y0 : y0);
    drag.side = Math.min(Math.max(Math.abs(p[0] - x0), Math.abs(p[1] - y0)), room);
    drag.corner = [sx > 0 ? x0 : x0 - drag.side, sy > 0 ? y0 : y0 - drag.side];
    renderOverlay();
    const q = document.createElementNS(SVG, "rect");
    q.setAttribute("x", drag.corner[0]); q.setAttribute("y", drag.corner[1]);
    q.setAttribute("width", drag.side); q.setAttribute("height", drag.side);
    q.setAttribute("class", "size-square"); q.style.strokeWidth = 2 / S.zoom;
    $("overlay").append(q);
  }
});
vp.addEventListener("pointerup", (ev) => {
  const d = drag;
  drag = null;
  vp.classList.remove("panning");
  if (!d) return;
  if (d.kind === "point" && d.moved) savePoints();
  if (d.kind === "add" && Math.hypot(ev.clientX - d.x, ev.clientY - d.y) < 4 && inside(d.at)) {
    points().push([round1(d.at[0]), round1(d.at[1]), S.classes[S.cls]]);
    S.selected = points().length - 1;
    savePoints();
  }
  if (d.kind === "size" && d.side >= 1) {
    S.sizes[name()] = round1(d.side);
    S.square[name()] = d.corner;
    save("size", S.sizes[name()]);
    renderAll();
  }
});
vp.addEventListener("wheel", (ev) => {
  ev.preventDefault();
  const r = vp.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
  const factor = Math.exp(-ev.deltaY * 0.0015), zoom = Math.min(Math.max(S.zoom * factor, 0.02), 64);
  S.panX = mx - (mx - S.panX) * zoom / S.zoom; S.panY = my - (my - S.panY) * zoom / S.zoom; S.zoom = zoom;
  transform();
}, { passive: false });

function setMode(mode) {
  if (mode === "size" && !S.binary) return;
  S.mode = mode;
  renderAll();
}

document.querySelectorAll("#modes button").forEach((b) => { b.onclick = () => setMode(b.dataset.mode); });
$("prev").onclick = () => show(S.pos - 1);
$("next").onclick = () => show(S.pos + 1);
$("accept").onclick = accept;
$("order").onchange = applyOrder;
$("clear-proportions").onclick = () => { delete S.proportions[name()]; save("proportions", null); renderAll(); };
$("clear-size").onclick = () => { delete S.sizes[name()]; save("size", null); renderAll(); };
window.addEventListener("resize", fit);
document.addEventListener("visibilitychange", () => { if (!document.hidden) S.lastMark = performance.now(); });
document.addEventListener("keyup", (ev) => { if (ev.key === " ") space = false; });
document.addEventListener("keydown", (ev) => {
  const t = ev.target, slider = t.tagName === "INPUT", typing = t.tagName === "SELECT" || t.tagName === "TEXTAREA";
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  const arrows = !slider && (key === "ArrowRight" || key === "ArrowLeft");
  if (key === " ") { space = true; if (t === document.body) ev.preventDefault(); return; }
  if (arrows || key === "n" || key === "b") show(S.pos + (key === "ArrowRight" || key === "n" ? 1 : -1));
  else if (key === "p") setMode("points");
  else if (key === "o") setMode("proportions");
  else if (key === "s") setMode("size");
  else if (key === "f") fit();
  else if (key === "Enter") accept();
  else if ((key === "Delete" || key === "Backspace") && S.mode === "points") deletePoint(S.selected);
  else if (/^[1-9]$/.test(key) && Number(key) <= S.classes.length) { S.cls = Number(key) - 1; renderClasses(); }
  else return;
  ev.preventDefault();
});

load();
