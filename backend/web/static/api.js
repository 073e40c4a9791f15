/* One way for pages to call the JSON API (loaded by the base template, before any page script).
 *
 *   const r = await api.request("POST", "/api/mad/simulate", {json: body});   // never throws for HTTP errors
 *   if (!r.ok) show(r.error);            // the server's message, or "HTTP 502" for a body that is not JSON
 *   const data = await api.json("POST", "/api/continue", {json: body});       // throws Error(r.error) instead
 *
 * Options: json (sent as application/json), form (a FormData, sent as multipart), headers.
 * A network failure still rejects (fetch's TypeError): the callers' catch shows it.
 * When the server has an API token (API_TOKEN / API_TOKENS), api.setToken(token) keeps it in this browser's
 * local storage and every call sends it as "Authorization: Bearer <token>".
 */
(function (global) {
  "use strict";

  async function request(method, url, options) {
    const opts = options || {};
    const headers = Object.assign({"Accept": "application/json"}, opts.headers || {});
    const token = getToken();
    if (token && !headers.Authorization) headers.Authorization = `Bearer ${token}`;
    let body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    } else if (opts.form !== undefined) {
      body = opts.form;  // the browser sets the multipart boundary itself
    }
    const response = await fetch(url, {method: method, headers: headers, body: body});
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }  // a proxy's HTML error page, an empty body
    const error = response.ok ? "" : (data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`);
    return {status: response.status, ok: response.ok, data: data, error: error};
  }

  async function json(method, url, options) {
    const r = await request(method, url, options);
    if (!r.ok) {
      const error = new Error(r.error);
      error.status = r.status;
      error.body = r.data;
      throw error;
    }
    return r.data;
  }

  const TOKEN_KEY = "coolpapers.apiToken";

  function getToken() {
    try { return global.localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  function setToken(token) {
    try {
      if (token) global.localStorage.setItem(TOKEN_KEY, token); else global.localStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lasts for this page only */ }
  }

  global.api = {request: request, json: json, getToken: getToken, setToken: setToken};
})(window);
