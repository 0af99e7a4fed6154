// The API client every page uses: the bearer token, JSON requests, problem+json errors,
// WebSocket addresses. The token lives in this tab's sessionStorage (docs/web.md): the
// browser never sends it on its own, so no other site can act with it.

const KEY = "openticket.session";

/** What the tab knows of its user: {token, expiresAt (ms), user} or null. */
export function account() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (stored && stored.expiresAt > Date.now()) return stored;
  } catch (_) { /* a damaged entry counts as none */ }
  sessionStorage.removeItem(KEY);
  return null;
}

export function signedIn() { return account() !== null; }

export function hasRole(role) {
  const a = account();
  return Boolean(a && a.user && a.user.roles.includes(role));
}

export function forget() { sessionStorage.removeItem(KEY); }

/** An answer of 4xx/5xx: its problem+json fields (code, detail, …) as properties. */
export class ProblemError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `request failed (${status})`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code || "error";
  }
}

/** One API call: JSON in and out; throws ProblemError on 4xx/5xx. */
export async function api(path, { method = "GET", body, headers = {}, auth = true } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const a = account();
  if (auth && a) sent.Authorization = `Bearer ${a.token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const answer = await fetch(path, {
    method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = answer.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await answer.json() : null;
  if (!answer.ok) {
    if (answer.status === 401 && auth && a) forget();
    throw new ProblemError(answer.status, data || { title: answer.statusText });
  }
  return data;
}

/** An image the API serves to the signed-in user (a ticket's QR code), as a blob URL. */
export async function imageUrl(path) {
  const a = account();
  const answer = await fetch(path, { headers: a ? { Authorization: `Bearer ${a.token}` } : {} });
  if (!answer.ok) throw new ProblemError(answer.status, { title: answer.statusText });
  return URL.createObjectURL(await answer.blob());
}

/** Sign in: keep the token and the user for this tab. */
export async function signIn(email, password) {
  const token = await api("/api/auth/token", { method: "POST", body: { email, password }, auth: false });
  const expiresAt = Date.now() + (token.expires_in - 5) * 1000;
  sessionStorage.setItem(KEY, JSON.stringify({ token: token.access_token, expiresAt, user: null }));
  const user = await api("/api/me");
  sessionStorage.setItem(KEY, JSON.stringify({ token: token.access_token, expiresAt, user }));
  return user;
}

/** The ws:// or wss:// address of a feed on this server; `withToken` adds ?token= (api.md). */
export function feedUrl(path, withToken = false) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (withToken) {
    const a = account();
    if (a) url.searchParams.set("token", a.token);
  }
  return url.toString();
}

/**
 * A live feed that reconnects (with backoff) until closed; `onMessage` gets each JSON
 * message, `onState` "open" / "reconnecting".
 */
export function liveFeed(path, { withToken = false, onMessage, onState = () => {} }) {
  let socket = null;
  let closed = false;
  let delay = 500;
  const connect = () => {
    socket = new WebSocket(feedUrl(path, withToken));
    socket.addEventListener("open", () => { delay = 500; onState("open"); });
    socket.addEventListener("message", (e) => onMessage(JSON.parse(e.data)));
    socket.addEventListener("close", () => {
      if (closed) return;
      onState("reconnecting");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10_000);
    });
  };
  connect();
  return { close() { closed = true; if (socket) socket.close(); } };
}

/** Money as the buyer reads it: {amount: "1200.00", currency: "TWD"} -> "TWD 1,200.00". */
export function money(m) {
  if (!m) return "";
  const n = Number(m.amount);
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: m.currency }).format(n);
  } catch (_) {
    return `${m.currency} ${m.amount}`;
  }
}

/** Show a form's error (role="alert" element with data-form-error), or hide it. */
export function showError(form, error) {
  const box = form.querySelector("[data-form-error]");
  if (!box) return;
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = error instanceof ProblemError ? error.message : String(error.message || error);
  box.hidden = false;
}

/** The page's `?next=` path (same site only), or `fallback`. */
export function nextPath(fallback = "/") {
  const next = new URLSearchParams(window.location.search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") ? next : fallback;
}

/** Send the visitor to sign in, coming back here afterwards. */
export function requireSignIn() {
  if (signedIn()) return true;
  const here = window.location.pathname + window.location.search;
  window.location.assign(`/signin?next=${encodeURIComponent(here)}`);
  return false;
}

const loaded = new Map();

/**
 * A third party's script that must come from its own address (Stripe.js, Turnstile),
 * loaded once; resolves to `window[global]`. Only pages whose policy lets it in may ask.
 */
export function loadScript(src, global, failure) {
  if (!loaded.has(src)) {
    loaded.set(src, new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.addEventListener("load", () => resolve(window[global]));
      script.addEventListener("error", () => { loaded.delete(src); reject(new Error(failure)); });
      document.head.append(script);
    }));
  }
  return loaded.get(src);
}
