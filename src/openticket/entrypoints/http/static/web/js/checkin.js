// Door staff's check-in: a QR code in, "Checked in" / "Already used" / "Unknown ticket" out.
// A scanner types the code and presses Enter; the field is cleared and ready for the next.
import { api, hasRole } from "./api.js";

const KEPT = 10;
const form = document.getElementById("check-in-form");
const input = document.getElementById("qr-code");
const result = document.getElementById("check-in-result");
const recent = document.getElementById("recent-check-ins");

function say(outcome, headline, details = "") {
  result.dataset.outcome = outcome;
  const strong = document.createElement("strong");
  strong.textContent = headline;
  result.replaceChildren(strong);
  if (details) {
    const p = document.createElement("span");
    p.className = "check-in-details";
    p.textContent = details;
    result.append(" ", p);
  }
}

function remember(outcome, text) {
  const item = document.createElement("li");
  item.dataset.outcome = outcome;
  const time = document.createElement("time");
  const now = new Date();
  time.setAttribute("datetime", now.toISOString());
  time.textContent = now.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  item.append(time, ` ${text}`);
  recent.prepend(item);
  while (recent.children.length > KEPT) recent.lastElementChild.remove();
  document.getElementById("recent-empty").hidden = true;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const qrCode = input.value.trim();
  if (!qrCode) {
    say("error", "Type or scan a QR code first.");
    input.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  say("pending", "Checking…");
  try {
    const ticket = await api("/api/check-ins", { method: "POST", body: { qr_code: qrCode } });
    say("ok", "Checked in", `Seat ${ticket.seat_id}: let them in.`);
    remember("ok", `Checked in: seat ${ticket.seat_id}`);
  } catch (error) {
    if (error.status === 409 && error.code === "already_used") {
      say("used", "Already used", "This ticket was checked in before: do not let it in again.");
      remember("used", "Already used");
    } else if (error.status === 404) {
      say("unknown", "Unknown ticket", "No ticket has this code.");
      remember("unknown", "Unknown ticket");
    } else if (error.status === 401 || error.status === 403) {
      say("error", error.message, "Sign in again as staff.");
    } else {
      say("error", error.message || "The check-in failed; try again.");
      remember("error", error.message || "Failed");
    }
  } finally {
    button.disabled = false;
    input.value = "";
    input.focus();
  }
});

if (hasRole("staff") || hasRole("admin")) {
  document.getElementById("check-in-tools").hidden = false;
  input.focus();
} else {
  document.getElementById("not-staff").hidden = false;
}
