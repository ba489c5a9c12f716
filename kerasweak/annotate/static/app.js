// kerasweak annotate: keypoints, proportions and sizes for a generic dataset folder. Plain JavaScript, no build step.
// Every change is sent to the server at once (POST api/save), which writes the CSV file (temporary file, then rename).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const S = {
  classes: [], colours: [], binary: false, images: [], keypoints: {}, proportions: {}, sizes: {}, times: {},
  model: null, uncertainty: {}, suggestions: {}, accepted: {}, order: [], pos: 0, mode: "points", cls: 0,
  zoom: 1, panX: 0, panY: 0, selected: -1, lastMark: performance.now(), square: {}, queue: Promise.resolve(), saves: 0,
};

const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
const current = () => S.images[S.order[S.pos]];
const name = () => current().name;

// ---------------------------------------------------------------- saving
function status(text, error) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", !!error);
}

function save(kind, value) {
  const now = performance.now();
  const seconds = Math.round(Math.min((now - S.lastMark) / 1000, 120) * 10) / 10;
  S.lastMark = now;
  const body = JSON.stringify({ image: name(), kind, value, seconds });
  status("saving…");
  renderList();
  S.queue = S.queue.then(async () => {
    try {
      const res = await fetch("api/save", { method: "POST", headers: { "Content-Type": "application/json" }, body });
      if (!res.ok) throw new Error((await res.text()).trim());
      S.saves += 1;
      status("saved");
    } catch (err) {
      status("not saved: " + err.message, true);
    }
  });
  renderProgress();
}

// ---------------------------------------------------------------- loading
async function load() {
  const res = await fetch("api/state" + location.search);
  if (!res.ok) { status((await res.text()).trim(), true); return; }
  Object.assign(S, await res.json());
  S.order = S.images.map((_, i) => i);
  if (!S.binary) $("modes").querySelector('[data-mode="size"]').hidden = true;
  $("order-label").hidden = !S.model;
  renderClasses();
  buildSliders();
  show(0);
}

function applyOrder() {
  const here = S.order[S.pos];
  S.order = S.images.map((_, i) => i);
  if ($("order").value === "uncertain") {
    const u = (i) => (S.uncertainty[S.images[i].name] ?? -1);
    S.order.sort((a, b) => u(b) - u(a) || a - b);
  }
  S.pos = Math.max(0, S.order.indexOf(here));
  renderList();
}

function show(pos) {
  S.pos = (pos + S.order.length) % S.order.length;
  S.selected = -1;
  S.lastMark = performance.now();
  const img = current();
  $("image-name").textContent = img.name;
  $("position").textContent = `${S.pos + 1} / ${S.images.length}`;
  const el = $("image");
  el.onload = fit;
  el.src = "images/" + encodeURIComponent(img.name);
  el.width = img.width; el.height = img.height;
  const svg = $("overlay");
  svg.setAttribute("width", img.width); svg.setAttribute("height", img.height);
  svg.setAttribute("viewBox", `0 0 ${img.width} ${img.height}`);
  fit();
  renderAll();
  if (S.model) suggest(img.name);
}

async function suggest(image) {
  if (S.suggestions[image]) return;
  $("suggest-note").textContent = "computing…";
  const res = await fetch("api/suggest/" + encodeURIComponent(image));
  if (!res.ok) { $("suggest-note").textContent = (await res.text()).trim(); return; }
  S.suggestions[image] = await res.json();
  S.uncertainty[image] = S.suggestions[image].uncertainty;
  if (image === name()) renderAll();
}

// ---------------------------------------------------------------- view: zoom and pan
function fit() {
  const vp = $("viewport").getBoundingClientRect(), img = current();
  S.zoom = Math.min(vp.width / img.width, vp.height / img.height) * 0.95 || 1;
  S.panX = (vp.width - img.width * S.zoom) / 2;
  S.panY = (vp.height - img.height * S.zoom) / 2;
  transform();
}

function transform() {
  $("stage").style.transform = `translate(${S.panX}px, ${S.panY}px) scale(${S.zoom})`;
  renderOverlay();
}

function imagePoint(ev) {
  const r = $("overlay").getBoundingClientRect(), img = current();
  return [(ev.clientX - r.left) / r.width * img.width, (ev.clientY - r.top) / r.height * img.height];
}

const inside = ([x, y]) => x >= 0 && y >= 0 && x < current().width && y < current().height;
const round1 = (v) => Math.round(v * 10) / 10;

// ---------------------------------------------------------------- rendering
function renderAll() {
  renderOverlay(); renderSliders(); renderSize(); renderSuggestion(); renderProgress(); renderList();
  document.querySelectorAll("#modes button").forEach((b) => b.classList.toggle("active", b.dataset.mode === S.mode));
  $("proportions-panel").hidden = S.mode !== "proportions";
  $("size-panel").hidden = S.mode !== "size";
  $("classes-panel").hidden = S.mode !== "points";
}

function renderClasses() {
  const box = $("classes");
  box.innerHTML = "";
  S.classes.forEach((c, i) => {
    const b = document.createElement("button");
    b.id = "class-" + i;
    b.innerHTML = `<span class="swatch" style="background:${rgb(S.colours[i])}"></span>${i < 9 ? i + 1 : ""} `;
    b.append(c);
    b.onclick = () => { S.cls = i; renderClasses(); };
    b.classList.toggle("active", i === S.cls);
    box.append(b);
  });
}

function circle(x, y, r, cls, colour) {
  const c = document.createElementNS(SVG, "circle");
  c.setAttribute("cx", x); c.setAttribute("cy", y); c.setAttribute("r", r);
  c.setAttribute("class", cls);
  c.style[cls.startsWith("suggestion") ? "stroke" : "fill"] = colour;
  return c;
}

function renderOverlay() {
  const svg = $("overlay"), img = S.images.length ? current() : null;
  if (!img) return;
  svg.innerHTML = "";
  const r = 6 / S.zoom;
  const sug = S.suggestions[img.name];
  if (sug && S.mode !== "size") {
    const taken = S.accepted[img.name] || new Set();
    sug.points.forEach(([x, y, c], i) => {
      if (taken.has(i)) return;
      const el = circle(x, y, r * 1.4, "suggestion", rgb(S.colours[S.classes.indexOf(c)]));
      el.style.strokeWidth = 2.5 / S.zoom;
      el.dataset.suggestion = i;
      svg.append(el);
    });
  }
  (S.keypoints[img.name] || []).forEach(([x, y, c], i) => {
    const el = circle(x, y, r, "point" + (i === S.selected ? " selected" : ""), rgb(S.colours[S.classes.indexOf(c)]));
    el.style.strokeWidth = 1.5 / S.zoom;
    el.dataset.index = i;
    svg.append(el);
  });
  const side = S.sizes[img.name];
  if (S.mode === "size" && side != null) {
    const [x, y] = S.square[img.name] || [(img.width - side) / 2, (img.height - side) / 2];
    const q = document.createElementNS(SVG, "rect");
    q.setAttribute("x", x); q.setAttribute("y", y); q.setAttribute("width", side); q.setAttribute("height", side);
    q.setAttribute("class", "size-square saved");
    q.style.strokeWidth = 2 / S.zoom;
    svg.append(q);
  }
}

function buildSliders() {
  const box = $("sliders");
  box.innerHTML = "";
  S.classes.forEach((c, i) => {
    const row = document.createElement("div");
    row.className = "slider";
    row.innerHTML = `<label for="prop-${i}"><span class="swatch" style="background:${rgb(S.colours[i])}"></span> </label>` +
      `<input type="range" id="prop-${i}" min="0" max="100" step="1"><output id="prop-out-${i}"></output>`;
    row.querySelector("label").append(c);
    box.append(row);
    const input = row.querySelector("input");
    input.addEventListener("input", () => setPercents(rebalance(percents(), i, Number(input.value)), false));
    input.addEventListener("change", () => setPercents(rebalance(percents(), i, Number(input.value)), true));
  });
}

// Integer percentages summing to 100 from fractions (largest remainder).
function toPercents(fractions) {
  const total = fractions.reduce((a, b) => a + b, 0) || 1;
  const raw = fractions.map((f) => (f / total) * 100);
  return fillTo100(raw, raw.map((_, j) => j), raw.map(Math.floor));
}

// Add 1 to the entries of `out` listed in `free` with the largest remainders (raw - out) until they sum to 100.
function fillTo100(raw, free, out) {
  const order = free.map((j) => [raw[j] - out[j], j]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const deficit = 100 - out.reduce((a, b) => a + b, 0);
  for (let k = 0; k < deficit; k++) out[order[k % order.length][1]] += 1;
  return out;
}

// Class i set to v percent; the others share the rest in their current ratio (evenly if they are all 0).
function rebalance(values, i, v) {
  const others = values.map((_, j) => j).filter((j) => j !== i);
  const sum = others.reduce((a, j) => a + values[j], 0);
  const raw = values.map((x, j) => (j === i ? v : (sum > 0 ? x / sum : 1 / others.length) * (100 - v)));
  return fillTo100(raw, others, raw.map((x, j) => (j === i ? v : Math.floor(x))));
}

function percents() {
  return S.classes.map((_, i) => Number($("prop-" + i).value));
}

function setPercents(values, store) {
  values.forEach((v, i) => { $("prop-" + i).value = v; $("prop-out-" + i).textContent = v + " %"; });
  drawBar($("bar"), values.map((v) => v / 100));
  if (store) {
    S.proportions[name()] = values.map((v) => v / 100);
    $("sliders").classList.remove("suggested");
    $("proportions-note").textContent = "saved row: " + values.map((v) => (v / 100).toString()).join(", ");
    save("proportions", S.proportions[name()]);
  }
}

function drawBar(bar, fractions) {
  bar.innerHTML = "";
  fractions.forEach((f, i) => {
    const d = document.createElement("div");
    d.style.width = (100 * f) + "%";
    d.style.background = rgb(S.colours[i]);
    d.title = `${S.classes[i]} ${(100 * f).toFixed(1)} %`;
    bar.append(d);
  });
}

function renderSliders() {
  const saved = S.proportions[name()], sug = S.suggestions[name()];
  const values = toPercents(saved || (sug ? sug.proportions : S.classes.map(() => 1)));
  setPercents(values, false);
  $("sliders").classList.toggle("suggested", !saved);
  $("proportions-note").textContent = saved ? "saved row: " + saved.join(", ")
    : sug ? "suggested by the model: move a slider or press Enter to accept" : "not labelled yet: move a slider";
}

function renderSize() {
  const side = S.sizes[name()];
  $("size-value").textContent = side == null ? "–" : side;
}

function renderSuggestion() {
  const sug = S.suggestions[name()];
  $("suggest-panel").hidden = !S.model;
  if (!sug) return;
  drawBar($("suggest-bar"), sug.proportions);
  const open = sug.points.length - (S.accepted[name()] || new Set()).size;
  $("suggest-note").textContent = `proportions ${sug.proportions.map((p) => Math.round(100 * p) + "%").join(" / ")}; ` +
    `${open} candidate points (dashed; click one to take it)` + (sug.size != null ? `; size ${sug.size} px` : "") +
    `; uncertainty ${sug.uncertainty}`;
}

function renderProgress() {
  const n = S.images.length;
  const count = (table, test) => S.images.filter((im) => test(table[im.name])).length;
  const parts = [`points ${count(S.keypoints, (p) => p && p.length)}/${n}`,
    `proportions ${count(S.proportions, (p) => p)}/${n}`];
  if (S.binary) parts.push(`sizes ${count(S.sizes, (s) => s != null)}/${n}`);
  $("progress").textContent = parts.join(" · ");
}

function renderList() {
  const list = $("image-list");
  list.innerHTML = "";
  S.order.forEach((i, pos) => {
    const im = S.images[i], li = document.createElement("li");
    const marks = [(S.keypoints[im.name] || []).length ? "•" : "", S.proportions[im.name] ? "%" : "", S.sizes[im.name] != null ? "□" : ""];
    li.textContent = `${im.name} ${marks.join("")}`;
    li.className = pos === S.pos ? "current" : "";
    li.onclick = () => show(pos);
    list.append(li);
  });
}

setInterval(async () => {  // the model's uncertainties arrive in the background; keep the order up to date
  if (!S.model || $("order").value !== "uncertain") return;
  const res = await fetch("api/state");
  if (res.ok) { S.uncertainty = (await res.json()).uncertainty; applyOrder(); }
}, 5000);

