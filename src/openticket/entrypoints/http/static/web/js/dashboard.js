// A session's sales dashboard: the seats available, held and sold now and over time, the
// queue depth and the orders per minute. The seat feed moves the counts at every change;
// GET /api/sessions/{id}/sales (the organizer's, every few seconds) sets them all.
import { api, hasRole, liveFeed, signedIn } from "./api.js";

const POLL_MS = 3000;
const KEPT_SAMPLES = 1200;
const SVG = "http://www.w3.org/2000/svg";
const CHART = { left: 44, right: 12, top: 12, bottom: 28 };
const SERIES = ["available", "held", "sold"];

const root = document.getElementById("dashboard");
const sessionId = root.dataset.sessionId;
const chart = document.getElementById("sales-chart");
const figures = { available: 0, held: 0, sold: 0, queue: 0, perMinute: 0, at: null };
const samples = [];
/** The priced seats' statuses from the feed: seat_id -> status. */
const seats = new Map();
let feedReady = false;
let stopped = false;

function show(id, value) { document.getElementById(id).textContent = String(value); }

function fromFeed() {
  if (!feedReady) return;
  const counts = { available: 0, held: 0, sold: 0 };
  for (const s of seats.values()) counts[s] = (counts[s] || 0) + 1;
  Object.assign(figures, counts, { at: new Date() });
  render();
}

function timeOf(date) {
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function render() {
  show("stat-available", figures.available);
  show("stat-held", figures.held);
  show("stat-sold", figures.sold);
  show("stat-queue", figures.queue);
  show("stat-orders-per-minute", figures.perMinute);
  const at = figures.at || new Date();
  const updated = document.getElementById("updated-at");
  updated.textContent = timeOf(at);
  updated.setAttribute("datetime", at.toISOString());
  const total = figures.available + figures.held + figures.sold;
  const soldPart = root.querySelector(".sold-part");
  const heldPart = root.querySelector(".held-part");
  soldPart.style.width = total ? `${(100 * figures.sold) / total}%` : "0";
  heldPart.style.width = total ? `${(100 * figures.held) / total}%` : "0";
  show("sold-share", total
    ? `${Math.round((100 * figures.sold) / total)}% of ${total} priced seats sold, ${figures.held} held now.`
    : "No seat has a price yet.");
  record(at);
  draw();
}

function record(at) {
  const last = samples[samples.length - 1];
  const sample = { t: at.getTime(), available: figures.available, held: figures.held, sold: figures.sold };
  if (last && SERIES.every((k) => last[k] === sample[k]) && sample.t - last.t < POLL_MS * 2) {
    return; // nothing moved: no new point yet
  }
  samples.push(sample);
  if (samples.length > KEPT_SAMPLES) samples.splice(0, samples.length - KEPT_SAMPLES);
}

function node(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

function draw() {
  const { left, right, top, bottom } = CHART;
  // drawn at the size it is shown, so that its text keeps the page's size
  const width = Math.max(280, Math.round(chart.getBoundingClientRect().width) || 640);
  const height = Math.round(Math.min(320, Math.max(180, width * 0.4)));
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const parts = [];
  const max = Math.max(1, ...samples.map((s) => s.available + s.held + s.sold));
  const first = samples.length ? samples[0].t : Date.now();
  const lastT = samples.length ? samples[samples.length - 1].t : first;
  const span = Math.max(60_000, lastT - first);
  const x = (t) => left + ((t - first) / span) * plotW;
  const y = (v) => top + plotH - (v / max) * plotH;
  for (const v of [0, Math.round(max / 2), max]) {
    parts.push(node("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }));
    parts.push(node("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, String(v)));
  }
  parts.push(node("text", { x: left, y: height - 8, class: "axis" }, timeOf(new Date(first))));
  parts.push(node("text", { x: width - right, y: height - 8, "text-anchor": "end", class: "axis" },
    timeOf(new Date(first + span))));
  for (const series of SERIES) {
    if (!samples.length) break;
    // a step line: a count holds until the next change
    let d = "";
    samples.forEach((s, i) => {
      d += i === 0 ? `M${x(s.t).toFixed(1)},${y(s[series]).toFixed(1)}`
        : `H${x(s.t).toFixed(1)}V${y(s[series]).toFixed(1)}`;
    });
    d += `H${(left + plotW).toFixed(1)}`;
    parts.push(node("path", { d, class: `line ${series}` }));
  }
  chart.replaceChildren(...parts);
  const total = figures.available + figures.held + figures.sold;
  chart.setAttribute("aria-label", samples.length
    ? `Seats over time since ${timeOf(new Date(first))}: now ${figures.sold} sold, ${figures.held} held and ${figures.available} available of ${total}`
    : "Seats over time: no figures yet");
}

function feedState(state) {
  const badge = document.getElementById("feed-state");
  badge.dataset.state = state;
  badge.textContent = state === "open" ? "Live" : state === "reconnecting" ? "Reconnecting…" : "Connecting…";
}

function problemShown(message) {
  const box = document.getElementById("dashboard-error");
  box.textContent = message;
  box.hidden = !message;
}

async function poll() {
  if (stopped) return;
  try {
    const sales = await api(`/api/sessions/${sessionId}/sales`);
    Object.assign(figures, {
      available: sales.sellable, held: sales.held, sold: sales.sold,
      queue: sales.queue_depth, perMinute: sales.orders_last_minute, at: new Date(sales.at),
    });
    problemShown("");
    render();
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      stop();
      document.getElementById("dashboard-live").hidden = true;
      document.getElementById("not-organizer").hidden = false;
      return;
    }
    if (error.status === 404) {
      stop();
      document.getElementById("dashboard-live").hidden = true;
      problemShown("This session is not one of yours: only its event's organizer (or an admin) sees its sales.");
      return;
    }
    problemShown(`The figures could not be read (${error.message}); trying again.`);
  }
  setTimeout(poll, POLL_MS);
}

let feed = null;
function stop() { stopped = true; if (feed) feed.close(); }

function main() {
  if (!signedIn() || !(hasRole("organizer") || hasRole("admin"))) {
    document.getElementById("not-organizer").hidden = false;
    return;
  }
  document.getElementById("dashboard-live").hidden = false;
  draw();
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(draw, 100);
  });
  feed = liveFeed(`/ws/sessions/${sessionId}/seats`, {
    onState: feedState,
    onMessage(message) {
      if (message.type === "snapshot") {
        seats.clear();
        for (const s of message.seats) if (s.price) seats.set(s.seat_id, s.status);
        feedReady = true;
        fromFeed();
      } else if (message.type === "seat" && seats.has(message.seat_id)) {
        seats.set(message.seat_id, message.status);
        fromFeed();
      }
    },
  });
  poll();
}

main();
