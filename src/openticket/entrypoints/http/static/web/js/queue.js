// The waiting room of a session sold through a queue: join, follow the live position,
// and hand the admission token to the page when it is the buyer's turn.
import { ProblemError, api, liveFeed, requireSignIn, signedIn } from "./api.js";
import { challenge } from "./challenge.js";

const storeKey = (sessionId) => `openticket.queue.${sessionId}`;

function waitText(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return "less than a minute";
  const minutes = Math.round(seconds / 60);
  return `about ${minutes} minute${minutes === 1 ? "" : "s"}`;
}

/**
 * Wire the #waiting-room section; `onAdmitted(token)` once the buyer is admitted, and
 * `onLeft()` when the admission is gone (used up or run out).
 */
export function waitingRoom(sessionId, { onAdmitted, onLeft = () => {} }) {
  const section = document.getElementById("waiting-room");
  const join = document.getElementById("join-queue");
  const facts = document.getElementById("queue-facts");
  const status = document.getElementById("queue-status");
  const position = document.getElementById("queue-position");
  const wait = document.getElementById("queue-wait");
  const error = document.getElementById("queue-error");
  let feed = null;
  let admitted = false;

  const fail = (message) => { error.textContent = message; error.hidden = !message; };
  const box = document.getElementById("challenge");
  const check = box ? challenge(box, { onError: (e) => fail(e.message) }) : null;

  function show(entry) {
    facts.hidden = false;
    join.hidden = true;
    sessionStorage.setItem(storeKey(sessionId), entry.queue_id);
    if (entry.status === "admitted") {
      status.textContent = "You are admitted: choose your seats now.";
      position.textContent = "0";
      wait.textContent = "none";
      section.classList.add("admitted");
      if (!admitted && entry.admission_token) {
        admitted = true;
        if (feed) { feed.close(); feed = null; }
        onAdmitted(entry.admission_token, entry);
      }
    } else if (entry.status === "sold_out") {
      status.textContent = "Sorry: this session is sold out.";
      position.textContent = "–";
      wait.textContent = "–";
      if (feed) { feed.close(); feed = null; }
    } else {
      status.textContent = entry.position === null
        ? "You are waiting in the pre-queue: places are drawn when the sale opens."
        : "You are waiting in line.";
      position.textContent = entry.position === null ? "drawn at the sale start" : String(entry.position);
      wait.textContent = waitText(entry.estimated_wait_s);
    }
  }

  function follow(entry) {
    show(entry);
    if (admitted || entry.status !== "waiting" || feed) return;
    feed = liveFeed(`/ws/sessions/${sessionId}/queue/${entry.queue_id}`, {
      withToken: true,
      onMessage: show,
    });
  }

  join.addEventListener("click", async () => {
    if (!requireSignIn()) return;
    fail("");
    join.disabled = true;
    const headers = {};
    if (check) {
      const token = check.token();
      if (!token) {
        fail("Complete the human check above first.");
        join.disabled = false;
        return;
      }
      headers["X-Challenge-Token"] = token;
    }
    try {
      follow(await api(`/api/sessions/${sessionId}/queue`, { method: "POST", headers }));
      if (box) box.hidden = true;
    } catch (e) {
      fail(e.code === "forbidden" ? "Only buyers' accounts can join the waiting room." : e.message);
      if (check) check.reset(); // a token is good for one try
    } finally {
      join.disabled = false;
    }
  });

  // back on the page (a reload): pick up the entry this tab joined with
  const known = sessionStorage.getItem(storeKey(sessionId));
  if (known && signedIn()) {
    api(`/api/sessions/${sessionId}/queue/${known}`).then(follow).catch((e) => {
      sessionStorage.removeItem(storeKey(sessionId));
      if (!(e instanceof ProblemError && e.status === 404)) fail(e.message);
    });
  }

  return {
    /** The admission was used or ran out: join again for another order. */
    reset() {
      admitted = false;
      sessionStorage.removeItem(storeKey(sessionId));
      section.classList.remove("admitted");
      facts.hidden = true;
      join.hidden = false;
      onLeft();
    },
  };
}
