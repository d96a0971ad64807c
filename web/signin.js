// The sign-in page: posts the form to /v1/auth/login (which also sets the session cookie) and opens the home page.
// The chat page talks to the server with a bearer token and authenticates its socket with it, so the token
// from the answer is kept for this tab, where the `/chat#token=` link would have put it.
import { errorText, initPage, t } from "/static/i18n.js";

initPage();
const form = document.getElementById("signin");
const error = document.getElementById("form-error");
const button = document.getElementById("signin-submit");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const login = form.login.value.trim();
  const password = form.password.value;
  if (!login || !password) {
    error.textContent = t("signin.missing");
    return;
  }
  button.disabled = true;
  error.textContent = "";
  try {
    const resp = await fetch("/v1/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ login, password }),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      error.textContent = errorText({ ...(body.error || {}), status: resp.status });
      return;
    }
    sessionStorage.setItem("convene-chat-token", body.token);
    location.assign("/"); // the home page: meetings, channels, tasks
  } catch (err) {
    error.textContent = errorText(err);
  } finally {
    button.disabled = false;
  }
});

// Single sign-on: the button shows only where the server has an identity provider; a failed sign-in comes back
// here as /signin?error=<code>, said in the reader's language.
async function offerSso() {
  try {
    const resp = await fetch("/v1/auth/methods", { credentials: "same-origin" });
    const methods = resp.ok ? await resp.json() : {};
    document.getElementById("sso").hidden = !methods.oidc;
  } catch {
    // No answer: the password form still works.
  }
}

const ssoError = new URLSearchParams(location.search).get("error");
if (ssoError && /^[a-z_]{1,64}$/.test(ssoError)) {
  error.textContent = errorText({ code: ssoError });
  history.replaceState(null, "", "/signin");
}
offerSso();
