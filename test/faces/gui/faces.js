// The faces grid: 16 cells, each asking face (through /face/ on this server)
// for its smiley and colour every 2 s, one request in flight per cell.
// Cells carry data-* attributes a browser test can read:
//   data-row, data-col, data-kind (center|edge), data-state
//   (pending|ok|slow|down|error), data-smiley (name), data-color (hex),
//   data-misses (504/429 in a row), data-smiley-route, data-smiley-backend,
//   data-color-route, data-color-backend (when the mesh's debug headers came back).
// The grid gets data-ready="true" once every cell has had an answer.

const SIZE = 4;
const POLL_MS = 2000;
const LEGEND_WINDOW_MS = 10_000;
/** Answers slower than this start to fade the cell; at SLOW_MAX_MS it is faintest. */
const SLOW_FROM_MS = 500;
const SLOW_MAX_MS = 2500;
const MAX_MISSES = 4;

const SLEEPING = { name: "Sleeping", glyph: "\u{1F634}" };
const CONFUSED = { name: "Confused", glyph: "\u{1F615}" };
const RED = "#EE6677";
const PURPLE = "#AA3377";
const COLOR_NAMES = {
  "#66CCEE": "blue",
  "#228833": "green",
  "#4477AA": "darkblue",
  "#BBBBBB": "grey",
  "#EE6677": "red",
  "#AA3377": "purple",
  "#CCBB44": "yellow",
};

const grid = document.getElementById("grid");
const userBox = document.getElementById("user");
const legendSmileys = document.getElementById("legend-smileys");
const legendColors = document.getElementById("legend-colors");
const legendTotal = document.getElementById("legend-total");

/** Responses of the last LEGEND_WINDOW_MS: { at, smiley, glyph, color }. */
const samples = [];

const initialUser = new URLSearchParams(location.search).get("user");
if (initialUser !== null) userBox.value = initialUser;

/** "&#x1F603;" or "&#128515;" → the character; anything else → "?". */
function glyphOf(entity) {
  const hex = /^&#x([0-9a-f]+);$/i.exec(entity);
  const dec = /^&#([0-9]+);$/.exec(entity);
  const code = hex ? Number.parseInt(hex[1], 16) : dec ? Number.parseInt(dec[1], 10) : Number.NaN;
  if (!Number.isInteger(code) || code < 0 || code > 0x10ffff) return "?";
  return String.fromCodePoint(code);
}

function isCenter(row, col) {
  return row >= 1 && row <= 2 && col >= 1 && col <= 2;
}

function setOrRemove(el, attr, value) {
  if (value === undefined || value === null || value === "") el.removeAttribute(attr);
  else el.setAttribute(attr, value);
}

function opacityFor(ms) {
  if (ms <= SLOW_FROM_MS) return 1;
  const t = Math.min(1, (ms - SLOW_FROM_MS) / (SLOW_MAX_MS - SLOW_FROM_MS));
  return 1 - 0.65 * t;
}

function describeServed(what, s) {
  if (!s) return `${what}: -`;
  const parts = [`${what}: ${s.status}`];
  if (s.route) parts.push(`route ${s.route}`);
  if (s.backend) parts.push(`backend ${s.backend}`);
  if (s.pod) parts.push(`pod ${s.pod}`);
  if (typeof s.ms === "number") parts.push(`${s.ms} ms`);
  return parts.join(", ");
}

class Cell {
  constructor(row, col) {
    this.row = row;
    this.col = col;
    this.kind = isCenter(row, col) ? "center" : "edge";
    this.inFlight = false;
    this.startedAt = 0;
    this.misses = 0;
    this.answered = false;

    this.el = document.createElement("div");
    this.el.className = "cell";
    this.el.dataset.row = String(row);
    this.el.dataset.col = String(col);
    this.el.dataset.kind = this.kind;
    this.el.dataset.state = "pending";
    this.el.dataset.misses = "0";
    this.face = document.createElement("span");
    this.face.className = "face";
    this.face.textContent = "\u{1F636}";
    this.served = document.createElement("span");
    this.served.className = "served";
    this.missBadge = document.createElement("span");
    this.missBadge.className = "misses";
    this.el.append(this.face, this.served, this.missBadge);
  }

  tick() {
    if (this.inFlight) {
      // a request that is taking long fades the cell while it waits
      this.el.style.opacity = String(
        Math.min(Number(this.el.style.opacity || 1), opacityFor(performance.now() - this.startedAt)),
      );
      return;
    }
    this.poll();
  }

  async poll() {
    this.inFlight = true;
    this.startedAt = performance.now();
    const headers = { accept: "application/json" };
    const user = userBox.value.trim();
    if (user !== "") headers["x-faces-user"] = user;
    try {
      const res = await fetch(`face/${this.kind}/?row=${this.row}&col=${this.col}`, {
        headers,
        cache: "no-store",
      });
      const ms = performance.now() - this.startedAt;
      if (res.status === 504 || res.status === 429) {
        await res.body?.cancel();
        this.miss(res.status);
      } else if (!res.ok) {
        await res.body?.cancel();
        this.fail(`HTTP ${res.status}`);
      } else {
        const cell = await res.json();
        if (typeof cell.smiley !== "string" || typeof cell.color !== "string") throw new Error("bad answer");
        this.show(cell, ms, {
          route: res.headers.get("x-trellis-route"),
          backend: res.headers.get("x-trellis-backend"),
        });
      }
    } catch (err) {
      this.fail(err instanceof Error ? err.message : String(err));
    } finally {
      this.inFlight = false;
      this.answered = true;
      markReady();
    }
  }

  paint(state, smileyName, glyph, color, opacity) {
    this.el.dataset.state = state;
    this.el.dataset.smiley = smileyName;
    this.el.dataset.color = color;
    this.face.textContent = glyph;
    this.el.style.backgroundColor = color;
    this.el.style.opacity = String(opacity);
    samples.push({ at: Date.now(), smiley: smileyName, glyph, color });
  }

  show(cell, ms, faceHop) {
    this.misses = 0;
    this.el.dataset.misses = "0";
    this.missBadge.textContent = "";
    const state = ms > SLOW_FROM_MS * 2 ? "slow" : "ok";
    this.paint(state, cell.smileyName || "Unknown", glyphOf(cell.smiley), cell.color, opacityFor(ms));

    const s = cell.served?.smiley;
    const c = cell.served?.color;
    setOrRemove(this.el, "data-smiley-route", s?.route);
    setOrRemove(this.el, "data-smiley-backend", s?.backend);
    setOrRemove(this.el, "data-color-route", c?.route);
    setOrRemove(this.el, "data-color-backend", c?.backend);
    const short = [];
    if (s?.backend || s?.route) short.push(s.backend || s.route);
    if (c?.backend || c?.route) short.push(c.backend || c.route);
    this.served.textContent = short.join(" · ");
    const lines = [
      `row ${this.row}, col ${this.col} (${this.kind}), ${Math.round(ms)} ms`,
      `${cell.smileyName} on ${cell.colorName ?? cell.color}`,
      describeServed("smiley", s),
      describeServed("color", c),
      `face pod ${cell.pod ?? "?"}`,
    ];
    if (faceHop.route || faceHop.backend)
      lines.push(`face: route ${faceHop.route ?? "-"}, backend ${faceHop.backend ?? "-"}`);
    if (cell.errors?.length) lines.push(...cell.errors);
    this.el.title = lines.join("\n");
  }

  miss(status) {
    this.misses += 1;
    this.el.dataset.misses = String(this.misses);
    this.missBadge.textContent = String(this.misses);
    if (this.misses > MAX_MISSES) {
      this.paint("down", SLEEPING.name, SLEEPING.glyph, RED, 0.5);
      this.el.title = `row ${this.row}, col ${this.col}: ${this.misses} answers ${status} in a row`;
      this.served.textContent = "";
    }
  }

  fail(why) {
    this.misses = 0;
    this.el.dataset.misses = "0";
    this.missBadge.textContent = "";
    this.paint("error", CONFUSED.name, CONFUSED.glyph, PURPLE, 1);
    this.el.title = `row ${this.row}, col ${this.col}: ${why}`;
    this.served.textContent = "";
  }
}

const cells = [];
for (let row = 0; row < SIZE; row++) {
  for (let col = 0; col < SIZE; col++) {
    const cell = new Cell(row, col);
    cells.push(cell);
    grid.append(cell.el);
  }
}

function markReady() {
  if (grid.dataset.ready !== "true" && cells.every((c) => c.answered)) grid.dataset.ready = "true";
}

function legendRow(list, key, value, swatch, count, total, label = value) {
  const li = document.createElement("li");
  li.dataset.legend = key;
  li.dataset.name = value;
  const share = total ? count / total : 0;
  li.dataset.share = share.toFixed(3);
  li.append(swatch);
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = label;
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${Math.round(share * 100)}%`;
  bar.append(fill);
  const pct = document.createElement("span");
  pct.className = "share";
  pct.textContent = `${Math.round(share * 100)}%`;
  li.append(name, bar, pct);
  list.append(li);
}

function renderLegend() {
  const cutoff = Date.now() - LEGEND_WINDOW_MS;
  while (samples.length && samples[0].at < cutoff) samples.shift();
  const smileys = new Map();
  const colors = new Map();
  for (const s of samples) {
    const sm = smileys.get(s.smiley) ?? { glyph: s.glyph, count: 0 };
    sm.count += 1;
    smileys.set(s.smiley, sm);
    colors.set(s.color, (colors.get(s.color) ?? 0) + 1);
  }
  const total = samples.length;
  legendTotal.textContent = total ? `${total} answers` : "no responses yet";
  legendSmileys.replaceChildren();
  legendColors.replaceChildren();
  for (const [name, { glyph, count }] of [...smileys].sort((a, b) => b[1].count - a[1].count)) {
    const emoji = document.createElement("span");
    emoji.className = "emoji";
    emoji.textContent = glyph;
    legendRow(legendSmileys, "smiley", name, emoji, count, total);
  }
  for (const [hex, count] of [...colors].sort((a, b) => b[1] - a[1])) {
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = hex;
    const label = COLOR_NAMES[hex.toUpperCase()];
    legendRow(legendColors, "color", hex, swatch, count, total, label ? `${label} ${hex}` : hex);
  }
}

for (const cell of cells) {
  setTimeout(
    () => {
      cell.tick();
      setInterval(() => cell.tick(), POLL_MS);
    },
    Math.floor(Math.random() * 250),
  );
}
setInterval(renderLegend, 1000);
