// The canvas's one way to call the platform: same-origin, session cookie + CSRF token, JSON.
// Every call resolves (never throws) to {ok, status, data, error} so callers branch on `ok`.

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export async function api(method, path, body, { timeoutMs = 30000, headers = {} } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const init = { method, credentials: "same-origin", signal: controller.signal,
    headers: { "Accept": "application/json", ...headers } };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRFToken"] = csrfToken();
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  try {
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    const error = response.ok ? null : (data && typeof data === "object" && data.error) || text || response.statusText;
    return { ok: response.ok, status: response.status, data, error };
  } catch (err) {
    return { ok: false, status: 0, data: null, error: err.name === "AbortError" ? "request timed out" : "platform unreachable" };
  } finally {
    clearTimeout(timer);
  }
}

// A server-rendered fragment (card, panel tab, dialog body) as an HTML string, or null.
export async function fragment(path) {
  try {
    const response = await fetch(path, { credentials: "same-origin", headers: { "X-Molecule-Fragment": "1", "Accept": "text/html" } });
    if (response.status === 401) { loginAgain(); return null; }
    if (!response.ok) return null;
    return await response.text();
  } catch {
    return null;
  }
}

function loginAgain() {
  window.location.assign(`/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`);
}

export { csrfToken };
