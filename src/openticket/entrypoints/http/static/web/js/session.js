// A session's page: the live seat map, picking seats, holding them, the countdown,
// paying or cancelling; the waiting room first for a session sold through a queue.
import { api, liveFeed, signedIn } from "./api.js";
import { SeatMap, priceText } from "./seatmap.js";
import { waitingRoom } from "./queue.js";
import { confirmCard, hideCard, showCard } from "./card.js";

const root = document.getElementById("session");
const sessionId = root.dataset.sessionId;
const maxSeats = Number(root.dataset.maxSeats);
const queued = root.dataset.queueEnabled === "true";
const onSale = root.dataset.onSale === "true";
const LIVE = new Set(["created", "payment_pending"]);

const $ = (id) => document.getElementById(id);
const els = {
  feedState: $("feed-state"), message: $("pick-message"), error: $("checkout-error"),
  picker: $("picker"), pickedNone: $("picked-none"), pickedList: $("picked-list"),
  pickedTotalLine: $("picked-total-line"), pickedTotal: $("picked-total"), hold: $("hold"),
  checkout: $("checkout"), countdown: $("countdown"), orderSeats: $("order-seats"),
  orderTotal: $("order-total"), payForm: $("pay-form"), pay: $("pay"), provider: $("provider"),
  cancel: $("cancel-order"), paid: $("paid"),
};

const picked = new Map(); // seat_id -> seat
let map = null;
let admission = null; // the waiting room's admission token
let room = null;
let order = null; // the live order of this page
let holding = false;
let timer = null;

function say(text) {
  els.message.textContent = text || "";
  els.message.hidden = !text;
}

function fail(error) {
  const text = error ? error.message || String(error) : "";
  els.error.textContent = text;
  els.error.hidden = !text;
}

function sumOf(prices) {
  if (!prices.length || prices.some((p) => !p)) return null;
  const cents = prices.reduce((total, p) => total + Math.round(Number(p.amount) * 100), 0);
  return { amount: (cents / 100).toFixed(2), currency: prices[0].currency };
}

function seatLine(seatId, price) {
  const li = document.createElement("li");
  const seat = map?.seats.get(seatId)?.seat;
  const where = seat ? `area ${seat.area_id}, row ${seat.row}, seat ${seat.number}` : seatId;
  li.textContent = `${seatId} (${where}): ${priceText(price)}`;
  return li;
}

function renderPicks() {
  els.pickedList.replaceChildren(...[...picked.values()].map((s) => seatLine(s.seat_id, s.price)));
  els.pickedNone.hidden = picked.size > 0;
  const total = sumOf([...picked.values()].map((s) => s.price));
  els.pickedTotalLine.hidden = !total;
  els.pickedTotal.textContent = total ? priceText(total) : "";
  els.hold.disabled = picked.size === 0 || holding;
}

function unpick(seatId) {
  picked.delete(seatId);
  map.setPicked(seatId, false);
}

function canBuy() {
  if (!signedIn()) return "Sign in to buy seats.";
  if (!onSale) return "This session is not on sale now.";
  if (queued && !admission) return "Join the waiting room first: the seat map opens when it is your turn.";
  if (order) return "Pay for or cancel your order first.";
  return null;
}

function activate(entry) {
  const { seat } = entry;
  if (picked.has(seat.seat_id)) {
    unpick(seat.seat_id);
    say("");
    renderPicks();
    return;
  }
  const refused = canBuy();
  if (refused) { say(refused); return; }
  if (seat.status !== "available") { say(`Seat ${seat.seat_id} is ${seat.status}.`); return; }
  if (!seat.price) { say(`Seat ${seat.seat_id} is not on sale.`); return; }
  if (picked.size >= maxSeats) {
    say(`You can pick at most ${maxSeats} seat${maxSeats === 1 ? "" : "s"} per order.`);
    return;
  }
  const other = [...picked.values()].find((s) => s.area_id !== seat.area_id);
  if (other) { say(`The seats of one order must be in one area: ${other.seat_id} is in area ${other.area_id}.`); return; }
  picked.set(seat.seat_id, seat);
  map.setPicked(seat.seat_id, true);
  say("");
  renderPicks();
}

/** A change from the seat feed: a picked seat taken elsewhere leaves the selection. */
function seatChanged(seatId, status) {
  map.setStatus(seatId, status);
  if (status !== "available" && picked.has(seatId) && !holding) {
    unpick(seatId);
    say(`Seat ${seatId} was just taken by someone else and is no longer in your selection.`);
    renderPicks();
  }
}

async function hold() {
  fail(null);
  say("");
  holding = true;
  renderPicks();
  const headers = admission ? { "X-Admission-Token": admission } : {};
  try {
    const placed = await api("/api/orders", {
      method: "POST", headers, body: { session_id: sessionId, seat_ids: [...picked.keys()] },
    });
    for (const id of [...picked.keys()]) unpick(id);
    showOrder(placed);
    els.checkout.focus(); // on a phone the checkout is below the map: bring it in view
  } catch (e) {
    if (e.code === "seat_unavailable") {
      const gone = e.problem.unavailable_seats || [];
      for (const id of gone) unpick(id);
      say(`Sorry, ${gone.length === 1 ? "seat" : "seats"} ${gone.join(", ")} ${gone.length === 1 ? "was" : "were"} just taken: pick another.`);
    } else if (e.code === "queue_required") {
      room?.reset();
      fail("Your turn in the waiting room has run out: join it again to buy.");
    } else {
      fail(e);
    }
  } finally {
    holding = false;
    for (const id of [...picked.keys()]) {
      if (map.status(id) !== "available") unpick(id);
    }
    renderPicks();
  }
}

function showCountdown() {
  const left = Math.max(0, Date.parse(order.expires_at) - Date.now());
  const seconds = Math.ceil(left / 1000);
  els.countdown.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  if (left <= 0) {
    clearInterval(timer);
    timer = null;
    ended("expired");
  }
}

function showOrder(placed) {
  order = placed;
  els.picker.hidden = true;
  els.paid.hidden = true;
  els.checkout.hidden = false;
  for (const item of order.items) map.setMine(item.seat_id, true);
  els.orderSeats.replaceChildren(...order.items.map((i) => seatLine(i.seat_id, i.price)));
  els.orderTotal.textContent = priceText(order.total);
  els.pay.disabled = false;
  els.cancel.disabled = false;
  clearInterval(timer);
  timer = setInterval(showCountdown, 250);
  showCountdown();
}

const ENDINGS = {
  expired: "Your hold ran out and the seats are free again: pick seats to start over.",
  failed: "The payment did not go through and the seats are free again: pick seats to start over.",
  cancelled: "Order cancelled: the seats are free again.",
};

/** The order is over: paid, or gone (expired, failed, cancelled). */
function ended(status) {
  if (!order) return;
  clearInterval(timer);
  timer = null;
  for (const item of order.items) map.setMine(item.seat_id, false);
  els.checkout.hidden = true;
  if (status === "completed") {
    els.paid.hidden = false;
    els.paid.focus();
    say("");
  } else {
    els.picker.hidden = false;
    say(ENDINGS[status] || `The order is ${status}.`);
  }
  order = null;
  renderPicks();
}

async function pay(e) {
  e.preventDefault();
  fail(null);
  els.pay.disabled = true;
  els.cancel.disabled = true;
  const provider = els.provider.value;
  try {
    const payment = await api(`/api/orders/${order.order_id}/payments`, { method: "POST", body: { provider } });
    if (payment.redirect_url) {
      window.location.assign(payment.redirect_url); // LINE Pay: back to /orders/{id} afterwards
      return;
    }
    if (payment.client_secret && payment.status !== "succeeded") {
      await confirmCard(payment.client_secret); // Stripe: settled by its webhook, seen live
      say("Card accepted: waiting for the payment to be confirmed…");
      return;
    }
    if (payment.status === "succeeded") ended("completed");
    else if (payment.status === "failed") ended("failed");
    else say("Waiting for the payment to be confirmed…");
  } catch (error) {
    fail(error);
    els.pay.disabled = false;
    els.cancel.disabled = false;
  }
}

async function cancel() {
  fail(null);
  els.cancel.disabled = true;
  try {
    const cancelled = await api(`/api/orders/${order.order_id}`, { method: "DELETE" });
    ended(cancelled.status);
  } catch (error) {
    fail(error);
    els.cancel.disabled = false;
  }
}

/** An order of this buyer's still open for this session (after a reload): pick it up. */
async function resumeOrder() {
  let cursor = null;
  let found = null;
  for (let pages = 0; pages < 20; pages += 1) {
    const query = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : "?limit=100";
    const listed = await api(`/api/me/orders${query}`);
    for (const o of listed.items) {
      if (o.session_id === sessionId && LIVE.has(o.status)) found = o;
    }
    cursor = listed.next_cursor;
    if (!cursor) break;
  }
  if (found && !order && Date.parse(found.expires_at) > Date.now()) showOrder(found);
}

function followMyOrders() {
  liveFeed("/ws/me/orders", {
    withToken: true,
    onMessage: (m) => {
      if (m.type === "order" && order && m.order_id === order.order_id && !LIVE.has(m.status)) ended(m.status);
    },
  });
}

async function start() {
  const areaNames = new Map(
    [...document.querySelectorAll("[data-area-id]")].map((li) => [li.dataset.areaId, li.textContent.trim()]),
  );
  const categoryOf = new Map();
  document.querySelectorAll("#price-legend [data-price]").forEach((li, i) => {
    categoryOf.set(li.dataset.price, i);
    li.querySelector(".swatch").classList.add(`cat-${i % 6}`);
  });
  let seats;
  try {
    seats = (await api(`/api/sessions/${sessionId}/seats`, { auth: false })).items;
  } catch (error) {
    els.feedState.textContent = `The seat map could not be loaded: ${error.message}`;
    return;
  }
  map = new SeatMap($("seat-map"), seats, { areaNames, categoryOf, onActivate: activate });
  els.feedState.textContent = "Connecting to live seat updates…";
  liveFeed(`/ws/sessions/${sessionId}/seats`, {
    onMessage: (m) => {
      if (m.type === "snapshot") for (const s of m.seats) seatChanged(s.seat_id, s.status);
      else if (m.type === "seat") seatChanged(m.seat_id, m.status);
    },
    onState: (state) => {
      els.feedState.textContent = state === "open" ? "Seats update live." : "Reconnecting to live seat updates…";
    },
  });

  els.hold.addEventListener("click", hold);
  els.payForm.addEventListener("submit", pay);
  const cardField = $("card-field");
  if (cardField) {
    const chooseProvider = () => {
      if (els.provider.value === "stripe") showCard(cardField).catch((error) => fail(error));
      else hideCard(cardField);
    };
    els.provider.addEventListener("change", chooseProvider);
    chooseProvider();
  }
  els.cancel.addEventListener("click", cancel);
  if (!els.provider.options.length) {
    els.pay.disabled = true;
    fail("No payment provider is configured on this server.");
  }
  if (!signedIn()) {
    els.picker.hidden = true;
    return;
  }
  if (queued) {
    els.picker.classList.add("locked");
    room = waitingRoom(sessionId, {
      onAdmitted: (token) => {
        admission = token;
        els.picker.classList.remove("locked");
        say("It is your turn: choose your seats.");
      },
      onLeft: () => { admission = null; els.picker.classList.add("locked"); },
    });
  }
  followMyOrders();
  resumeOrder().catch(() => {});
}

start();
