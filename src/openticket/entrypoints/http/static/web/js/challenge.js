// The waiting room's human check: Cloudflare Turnstile's widget, for sessions with
// challenge_required. The token it gives goes with the join (X-Challenge-Token), once:
// Turnstile's tokens are single-use, so the widget is reset after each attempt. The
// script comes from Cloudflare, as Turnstile requires; the page's policy lets it in only
// when this server has a site key and the session asks for the check.

import { loadScript } from "./api.js";

const TURNSTILE_JS = "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";

/**
 * The challenge in `box` ([data-sitekey]): `token()` is the current token (or null until
 * solved), `reset()` asks for a new one after it was used.
 */
export function challenge(box, { onError = () => {} } = {}) {
  let current = null;
  let widget = null;
  let turnstile = null;
  loadScript(TURNSTILE_JS, "turnstile", "The human check could not be loaded: reload the page to try again.").then((t) => {
    turnstile = t;
    widget = t.render(box.querySelector("#challenge-widget"), {
      sitekey: box.dataset.sitekey,
      callback: (token) => { current = token; },
      "expired-callback": () => { current = null; },
      "error-callback": () => { current = null; onError(new Error("The human check failed: try it again.")); },
    });
  }).catch(onError);
  return {
    token() { return current; },
    reset() {
      current = null;
      if (turnstile && widget !== null) turnstile.reset(widget);
    },
  };
}
