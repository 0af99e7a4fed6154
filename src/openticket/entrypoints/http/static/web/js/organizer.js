// The organizer's page: a venue from a seat-map JSON, an event, its prices, its sessions,
// and the list of the organizer's sessions with their dashboards. The API checks every
// role; this page only shows a signed-in organizer (or admin) the forms.
import { account, api, hasRole, money, showError } from "./api.js";

const tools = document.getElementById("organizer-tools");
const notOrganizer = document.getElementById("not-organizer");
const loading = document.getElementById("organizer-loading");

const EXAMPLE_SEAT_MAP = {
  areas: [
    { area_id: "A", name: "Floor", rows: [
      { row: "1", seats: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
      { row: "2", seats: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
      { row: "3", seats: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
    ] },
    { area_id: "B", name: "Balcony", rows: [
      { row: "1", seats: [1, 2, 3, 4, 5, 6, 7, 8] },
      { row: "2", seats: [1, 2, 3, 4, 5, 6, 7, 8] },
    ] },
  ],
};

/** What the page knows: venues {venue_id: venue}, events [{event, sessions, categories}]. */
const known = { venues: new Map(), events: [] };

function me() { const a = account(); return a && a.user ? a.user : null; }
function isOrganizer() { return hasRole("organizer") || hasRole("admin"); }

// --- small helpers ------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function status(form, ...parts) {
  const box = form.querySelector("[data-form-status]");
  box.replaceChildren(...parts.map((p) => (typeof p === "string" ? document.createTextNode(p) : p)));
}

function clearMessages(form) { showError(form, null); status(form); }

/** A problem's detail (the API lists every field it refused there). */
function problemText(error) {
  const problem = error.problem || {};
  return problem.detail || error.message || "Something went wrong.";
}

function fail(form, error) { showError(form, error.problem ? problemText(error) : error); }

/** "2025-01-02T19:30" in the browser's time zone -> RFC 3339 UTC, or null. */
function localToUtc(value) {
  if (!value) return null;
  const when = new Date(value);
  return Number.isNaN(when.getTime()) ? null : when.toISOString();
}

/** A Date as a datetime-local value in the browser's time zone. */
function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// --- the seat map -------------------------------------------------------------------

/**
 * Where JSON.parse stopped: the offset of the first character that breaks the JSON
 * grammar (browsers do not all say where). A small scanner, run only after a failure.
 */
function syntaxErrorOffset(text) {
  let i = 0;
  const fail = () => { throw i; };
  const space = () => { while (i < text.length && " \t\n\r".includes(text[i])) i += 1; };
  const literal = (word) => { if (text.startsWith(word, i)) i += word.length; else fail(); };
  const string = () => {
    i += 1;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") {
        i += 1;
        if (text[i] === "u") { if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail(); i += 4; }
        else if (!'"\\/bfnrt'.includes(text[i] || "")) fail();
      } else if (text.charCodeAt(i) < 0x20) fail();
      i += 1;
    }
    if (i >= text.length) fail();
    i += 1;
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail();
    i += m[0].length;
  };
  const value = () => {
    space();
    const c = text[i];
    if (c === "{") {
      i += 1; space();
      if (text[i] === "}") { i += 1; return; }
      for (;;) {
        space(); if (text[i] !== '"') fail(); string(); space();
        if (text[i] !== ":") fail(); i += 1; value(); space();
        if (text[i] === ",") { i += 1; continue; }
        if (text[i] === "}") { i += 1; return; }
        fail();
      }
    } else if (c === "[") {
      i += 1; space();
      if (text[i] === "]") { i += 1; return; }
      for (;;) {
        value(); space();
        if (text[i] === ",") { i += 1; continue; }
        if (text[i] === "]") { i += 1; return; }
        fail();
      }
    } else if (c === '"') string();
    else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else number();
  };
  try {
    value(); space();
    if (i < text.length) fail();
  } catch (offset) {
    if (typeof offset === "number") return offset;
    throw offset;
  }
  return null;
}

/** "line 3, column 7" of a JSON syntax error, from the browser's message or the scanner. */
function syntaxErrorPlace(text, message) {
  const lineCol = /line (\d+) column (\d+)/i.exec(message);
  if (lineCol) return `line ${lineCol[1]}, column ${lineCol[2]}`;
  const position = /position (\d+)/i.exec(message);
  const offset = position ? Number(position[1]) : syntaxErrorOffset(text);
  if (offset === null) return "";
  const before = text.slice(0, offset).split("\n");
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/** The seat map typed or uploaded, parsed; throws an Error that says what is wrong. */
function readSeatMap(text) {
  if (!text.trim()) throw new Error("Paste a seat map, upload a JSON file, or insert the example.");
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    const place = syntaxErrorPlace(text, e.message);
    const reason = e.message.split(/, "|, \.\.\."|\n/)[0];
    throw new Error(`The seat map is not valid JSON${place ? ` (${place})` : ""}: ${reason}.`);
  }
  const map = parsed && parsed.seat_map && !parsed.areas ? parsed.seat_map : parsed;
  if (!map || typeof map !== "object" || !Array.isArray(map.areas)) {
    throw new Error('The seat map needs an "areas" list: {"areas": [{"area_id": "A", "name": "Floor", "rows": [...]}]}.');
  }
  return map;
}

function seatCount(map) {
  let seats = 0;
  for (const area of map.areas) for (const row of area.rows || []) seats += (row.seats || []).length;
  return seats;
}

const seatMapInput = document.getElementById("seat-map-json");
const seatMapSummary = document.getElementById("seat-map-summary");

function summarise() {
  try {
    const map = readSeatMap(seatMapInput.value);
    seatMapSummary.textContent = `${map.areas.length} area(s), ${seatCount(map)} seats`;
  } catch (_) {
    seatMapSummary.textContent = "";
  }
}

document.getElementById("insert-example").addEventListener("click", () => {
  seatMapInput.value = JSON.stringify(EXAMPLE_SEAT_MAP, null, 2);
  summarise();
  seatMapInput.focus();
});
seatMapInput.addEventListener("input", summarise);

document.getElementById("seat-map-file").addEventListener("change", async (e) => {
  const file = e.target.files && e.target.files[0];
  if (!file) return;
  seatMapInput.value = await file.text();
  summarise();
});

// --- venues, events: what the selects offer -------------------------------------------

function venueKey() { const u = me(); return `openticket.organizer.venues.${u ? u.user_id : "anyone"}`; }

function rememberVenue(venueId) {
  const ids = new Set(JSON.parse(localStorage.getItem(venueKey()) || "[]"));
  ids.add(venueId);
  localStorage.setItem(venueKey(), JSON.stringify([...ids]));
}

async function loadVenue(venueId) {
  if (known.venues.has(venueId)) return known.venues.get(venueId);
  try {
    const venue = await api(`/api/venues/${venueId}`);
    known.venues.set(venueId, venue);
    return venue;
  } catch (_) {
    return null;
  }
}

function fillSelect(select, items, placeholder) {
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, placeholder));
  for (const [value, label] of items) select.append(el("option", { value }, label));
  if (items.some(([value]) => value === chosen)) select.value = chosen;
}

function renderSelects() {
  const venues = [...known.venues.values()].map((v) => [v.venue_id, `${v.name} (${v.capacity} seats)`]);
  for (const s of document.querySelectorAll("[data-venue-select]")) {
    fillSelect(s, venues, venues.length ? "Choose a venue" : "Create a venue first");
  }
  const events = known.events.map((d) => [d.event.event_id, d.event.name]);
  for (const s of document.querySelectorAll("[data-event-select]")) {
    fillSelect(s, events, events.length ? "Choose an event" : "Create an event first");
  }
  renderAreaChoices();
}

async function loadEvents() {
  const user = me();
  const events = [];
  let cursor = null;
  for (let pages = 0; pages < 10; pages += 1) {
    const query = new URLSearchParams({ limit: "100" });
    if (cursor) query.set("cursor", cursor);
    const page = await api(`/api/events?${query}`);
    events.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  const mine = events.filter((e) => !("organizer_id" in e) || (user && e.organizer_id === user.user_id)
    || (hasRole("admin") && !hasRole("organizer")));
  known.events = await Promise.all(mine.map(async (e) => {
    const details = await api(`/api/events/${e.event_id}`);
    return { event: details, sessions: details.sessions || [], categories: details.price_categories || [] };
  }));
  const venueIds = new Set(JSON.parse(localStorage.getItem(venueKey()) || "[]"));
  for (const d of known.events) venueIds.add(d.event.venue_id);
  await Promise.all([...venueIds].map(loadVenue));
}

function renderSessions() {
  const list = document.getElementById("your-sessions");
  const items = [];
  for (const d of known.events) {
    const sessions = [...d.sessions].sort((a, b) => a.start_time.localeCompare(b.start_time));
    const venue = known.venues.get(d.event.venue_id);
    const prices = d.categories.map((c) => `${c.name} (${c.area_ids.join(", ")}) ${money(c.price)}`).join(" · ");
    const sessionItems = sessions.map((s) => {
      const label = `${d.event.name}, ${when(s.start_time)}`;
      return el("li", { class: "session-row" },
        el("span", { class: "session-when" }, el("time", { datetime: s.start_time }, when(s.start_time))),
        el("span", { class: "badge" }, s.sale_state ? s.sale_state.replace(/_/g, " ") : "session"),
        ...(s.queue_enabled ? [el("span", { class: "badge" }, "Waiting room")] : []),
        el("span", { class: "session-links" },
          el("a", { href: `/organizer/sessions/${s.session_id}` }, "Open the sales dashboard",
            el("span", { class: "visually-hidden" }, ` of ${label}`)),
          el("a", { href: `/sessions/${s.session_id}` }, "Open the public page",
            el("span", { class: "visually-hidden" }, ` of ${label}`))));
    });
    items.push(el("li", { class: "event-card" },
      el("h3", {}, d.event.name),
      el("p", { class: "hint" }, [venue ? venue.name : "", prices || "No prices yet"].filter(Boolean).join(" — ")),
      sessionItems.length ? el("ul", { class: "session-list" }, ...sessionItems)
        : el("p", { class: "hint" }, "No sessions yet.")));
  }
  list.replaceChildren(...items);
  document.getElementById("sessions-empty").hidden = items.length > 0;
}

async function refresh() {
  await loadEvents();
  renderSelects();
  renderSessions();
}

// --- the price category's areas -------------------------------------------------------

const categoryEvent = document.getElementById("category-event");
const areasInput = document.getElementById("category-areas");

function chosenAreas() {
  return areasInput.value.split(/[\s,]+/).map((a) => a.trim()).filter(Boolean);
}

function renderAreaChoices() {
  const box = document.getElementById("category-area-choices");
  const details = known.events.find((d) => d.event.event_id === categoryEvent.value);
  const venue = details && known.venues.get(details.event.venue_id);
  if (!venue) { box.replaceChildren(); return; }
  const priced = new Set(details.categories.flatMap((c) => c.area_ids));
  const chosen = new Set(chosenAreas());
  const chips = venue.seat_map.areas.map((area) => {
    const taken = priced.has(area.area_id);
    const button = el("button", {
      type: "button", class: "chip", "aria-pressed": String(chosen.has(area.area_id)),
    }, `${area.area_id} · ${area.name}${taken ? " (priced)" : ""}`);
    button.disabled = taken;
    button.addEventListener("click", () => {
      const now = new Set(chosenAreas());
      if (now.has(area.area_id)) now.delete(area.area_id); else now.add(area.area_id);
      areasInput.value = [...now].join(", ");
      renderAreaChoices();
    });
    return button;
  });
  box.replaceChildren(el("span", { class: "hint" }, "This venue's areas:"), ...chips);
}

categoryEvent.addEventListener("change", renderAreaChoices);
areasInput.addEventListener("input", renderAreaChoices);

// --- the forms ------------------------------------------------------------------------

function onSubmit(id, handler) {
  const form = document.getElementById(id);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearMessages(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await handler(form, new FormData(form));
    } catch (error) {
      fail(form, error);
    } finally {
      button.disabled = false;
    }
  });
}

onSubmit("venue-form", async (form, data) => {
  const name = String(data.get("name") || "").trim();
  if (!name) throw new Error("Give the venue a name.");
  const seatMap = readSeatMap(seatMapInput.value);
  const city = String(data.get("city") || "").trim();
  const venue = await api("/api/venues", {
    method: "POST", body: { name, address: city ? { city } : {}, seat_map: seatMap },
  });
  known.venues.set(venue.venue_id, venue);
  rememberVenue(venue.venue_id);
  renderSelects();
  document.getElementById("event-venue").value = venue.venue_id;
  status(form, `Venue created: ${venue.name}, ${venue.capacity} seats. Now create an event there.`);
});

onSubmit("event-form", async (form, data) => {
  const venueId = data.get("venue_id");
  if (!venueId) throw new Error("Choose the venue (create one first).");
  const name = String(data.get("name") || "").trim();
  if (!name) throw new Error("Give the event a name.");
  const event = await api("/api/events", {
    method: "POST", body: { venue_id: venueId, name, description: String(data.get("description") || "") },
  });
  known.events.push({ event, sessions: [], categories: [] });
  renderSelects();
  renderSessions();
  for (const s of document.querySelectorAll("[data-event-select]")) s.value = event.event_id;
  renderAreaChoices();
  form.querySelector("#event-name").value = "";
  form.querySelector("#event-description").value = "";
  status(form, `Event created: ${event.name}. Now price its areas and add a session.`);
});

onSubmit("category-form", async (form, data) => {
  const eventId = data.get("event_id");
  if (!eventId) throw new Error("Choose the event.");
  const areaIds = chosenAreas();
  if (!areaIds.length) throw new Error("Name at least one area (e.g. A).");
  const amount = String(data.get("amount") || "").trim().replace(/,/g, "");
  if (!/^\d+(\.\d{1,2})?$/.test(amount)) throw new Error("The price is a number such as 1200 or 1200.00.");
  const currency = String(data.get("currency") || "").trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency)) throw new Error("The currency is a three-letter code such as TWD.");
  const quota = String(data.get("quota") || "").trim();
  const body = { name: String(data.get("name") || "").trim(), area_ids: areaIds, price: { amount, currency } };
  if (quota) body.quota = Number(quota);
  const category = await api(`/api/events/${eventId}/price-categories`, { method: "POST", body });
  const details = known.events.find((d) => d.event.event_id === eventId);
  if (details) details.categories.push(category);
  areasInput.value = "";
  form.querySelector("#category-name").value = "";
  renderAreaChoices();
  renderSessions();
  status(form, `Price category added: ${category.name} for ${category.area_ids.join(", ")}.`);
});

onSubmit("session-form", async (form, data) => {
  const eventId = data.get("event_id");
  if (!eventId) throw new Error("Choose the event.");
  const times = {};
  const names = { start_time: "Starts", end_time: "Ends", sale_start_time: "Sale opens", sale_end_time: "Sale closes" };
  for (const [field, label] of Object.entries(names)) {
    times[field] = localToUtc(data.get(field));
    if (!times[field]) throw new Error(`Fill in “${label}”.`);
  }
  const body = {
    ...times,
    queue_enabled: data.get("queue_enabled") === "on",
    max_seats_per_order: Number(data.get("max_seats_per_order") || 10),
  };
  const session = await api(`/api/events/${eventId}/sessions`, { method: "POST", body });
  const details = known.events.find((d) => d.event.event_id === eventId);
  if (details) details.sessions.push(session);
  renderSessions();
  status(form, `Session created for ${when(session.start_time)}. `,
    el("a", { href: `/organizer/sessions/${session.session_id}` }, "Open the sales dashboard"), " · ",
    el("a", { href: `/sessions/${session.session_id}` }, "Open the public page"));
});

function defaultTimes() {
  const now = new Date();
  now.setSeconds(0, 0);
  const start = new Date(now.getTime() + 7 * 86_400_000);
  start.setHours(19, 30, 0, 0);
  const end = new Date(start.getTime() + 3 * 3_600_000);
  document.getElementById("session-start").value = toLocalInput(start);
  document.getElementById("session-end").value = toLocalInput(end);
  document.getElementById("session-sale-start").value = toLocalInput(now);
  document.getElementById("session-sale-end").value = toLocalInput(start);
  for (const zone of document.querySelectorAll("[data-time-zone]")) {
    zone.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  }
}

async function main() {
  loading.hidden = true;
  if (!isOrganizer()) { notOrganizer.hidden = false; return; }
  tools.hidden = false;
  defaultTimes();
  try {
    await refresh();
  } catch (error) {
    const list = document.getElementById("your-sessions");
    list.replaceChildren(el("li", { class: "error", role: "alert" }, `Could not load your events: ${error.message}`));
  }
}

main();
