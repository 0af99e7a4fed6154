// The buyer's tickets: each with its seat, session, status and QR code; printable.
import { api, imageUrl, liveFeed, requireSignIn } from "./api.js";
import { priceText } from "./seatmap.js";

const list = document.getElementById("tickets");
const state = document.getElementById("tickets-state");
const error = document.getElementById("tickets-error");
const STATUS = { issued: "Valid", used: "Checked in", voided: "Voided (refunded)" };
const sessions = new Map(); // session_id -> Promise<{name, start}>
const qrUrls = new Map(); // ticket_id -> blob URL

function sessionOf(sessionId) {
  if (!sessions.has(sessionId)) {
    sessions.set(sessionId, (async () => {
      const session = await api(`/api/sessions/${sessionId}`, { auth: false });
      const event = await api(`/api/events/${session.event_id}`, { auth: false });
      return { name: event.name, start: new Date(session.start_time) };
    })().catch(() => ({ name: "Event", start: null })));
  }
  return sessions.get(sessionId);
}

function fact(dl, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dl.append(dt, dd);
  return dd;
}

async function card(ticket) {
  const li = document.createElement("li");
  li.className = "ticket";
  li.dataset.ticketId = ticket.ticket_id;
  li.dataset.status = ticket.status;
  const about = await sessionOf(ticket.session_id);
  const heading = document.createElement("h2");
  heading.textContent = about.name;
  const dl = document.createElement("dl");
  if (about.start) {
    fact(dl, "When", about.start.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }));
  }
  fact(dl, "Seat", ticket.seat_id);
  fact(dl, "Status", STATUS[ticket.status] || ticket.status).className = "ticket-status";
  fact(dl, "Price", priceText(ticket.price));
  const figure = document.createElement("figure");
  figure.className = "qr";
  const img = document.createElement("img");
  img.alt = `QR code for seat ${ticket.seat_id}`;
  img.width = 264;
  img.height = 264;
  figure.append(img);
  li.append(heading, dl, figure);
  if (!qrUrls.has(ticket.ticket_id)) {
    qrUrls.set(ticket.ticket_id, imageUrl(`/api/me/tickets/${ticket.ticket_id}/qr.svg`));
  }
  qrUrls.get(ticket.ticket_id).then((url) => { img.src = url; }).catch(() => {
    img.alt = `The QR code for seat ${ticket.seat_id} could not be loaded; its code: ${ticket.qr_code}`;
  });
  return li;
}

async function load() {
  const tickets = [];
  let cursor = null;
  do {
    const query = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : "?limit=100";
    const page = await api(`/api/me/tickets${query}`);
    tickets.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  tickets.reverse(); // newest first
  list.replaceChildren(...(await Promise.all(tickets.map(card))));
  state.textContent = tickets.length
    ? `${tickets.length} ticket${tickets.length === 1 ? "" : "s"}.`
    : "You have no tickets yet: choose seats on the sessions page.";
}

function refresh() {
  load().then(() => { error.hidden = true; }).catch((e) => {
    error.textContent = `Your tickets could not be loaded: ${e.message}`;
    error.hidden = false;
  });
}

document.getElementById("print-tickets").addEventListener("click", () => window.print());

if (requireSignIn()) {
  refresh();
  // a payment that settles while the page is open brings its tickets in
  liveFeed("/ws/me/orders", {
    withToken: true,
    onMessage: (m) => { if (m.type === "order" && ["completed", "refunded"].includes(m.status)) refresh(); },
  });
}
