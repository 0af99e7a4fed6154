// Sign in and sign up.
import { api, nextPath, showError, signIn } from "./api.js";

const signInForm = document.getElementById("sign-in");
signInForm?.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(signInForm, null);
  const data = new FormData(signInForm);
  try {
    await signIn(data.get("email"), data.get("password"));
    window.location.assign(nextPath("/"));
  } catch (error) {
    showError(signInForm, error.status === 401 ? "Wrong email or password." : error);
  }
});

const signUpForm = document.getElementById("sign-up");
signUpForm?.addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(signUpForm, null);
  const data = new FormData(signUpForm);
  const body = {
    email: data.get("email"), password: data.get("password"), display_name: data.get("display_name"),
  };
  try {
    await api("/api/auth/register", { method: "POST", body, auth: false });
    await signIn(body.email, body.password);
    window.location.assign(nextPath("/"));
  } catch (error) {
    showError(signUpForm, error.code === "email_taken" ? "An account with this email exists: sign in instead." : error);
  }
});
