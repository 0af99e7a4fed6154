// Every page: who is signed in, what their roles open, sign out, local times.
import { account, forget } from "./api.js";

function render() {
  const a = account();
  const roles = a && a.user ? a.user.roles : [];
  for (const el of document.querySelectorAll("[data-when]")) {
    const when = el.dataset.when;
    const shown = when === "signed-in" ? Boolean(a)
      : when === "signed-out" ? !a
      : roles.includes(when) || (a !== null && roles.includes("admin") && when !== "buyer");
    el.hidden = !shown;
  }
  const who = document.getElementById("who");
  if (who && a && a.user) who.textContent = a.user.display_name;
}

document.getElementById("sign-out")?.addEventListener("click", () => {
  forget();
  window.location.assign("/");
});

for (const t of document.querySelectorAll("time[data-local-time]")) {
  const when = new Date(t.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) {
    t.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
}

render();
