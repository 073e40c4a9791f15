"""The pages' shared API helper (static/api.js) in real Chromium: one message for every kind of failure."""

from __future__ import annotations

CALL = """
const [method, url, options, done] = arguments;
const settle = (value) => done(value);
(async () => {
  const r = await api.request(method, url, options);
  let thrown = null;
  try { await api.json(method, url, options); } catch (e) { thrown = {message: e.message, status: e.status}; }
  return {status: r.status, ok: r.ok, error: r.error, data: r.data, thrown};
})().then(settle, (e) => settle({rejected: String(e)}));
"""


def call(browser, method, url, options=None):
    return browser.execute_async_script(CALL, method, url, options or {})


def test_api_helper_success_server_error_and_non_json(browser, live_server):
    browser.get(live_server.url + "/")
    browser.set_script_timeout(20)

    ok = call(browser, "GET", "/api/resolve?q=arXiv:2204.00595")
    assert ok["ok"] and ok["status"] == 200 and ok["error"] == "" and ok["thrown"] is None
    assert ok["data"]["ids"] == ["2204.00595"]

    # The server's JSON error: its message, for request() and json() alike.
    bad = call(browser, "POST", "/api/continue", {"json": {"prompt": "x", "method": "sideways"}})
    assert bad["status"] == 422 and not bad["ok"]
    assert "method" in bad["error"]
    assert bad["thrown"] == {"message": bad["error"], "status": 422}

    # The backend negotiates: a JSON caller gets its JSON 404 even for a page path.
    missing = call(browser, "GET", "/no-such-page/at-all")
    assert missing["status"] == 404 and missing["error"] == "nothing here: /no-such-page/at-all"

    # A body that is not JSON (a proxy's HTML error page): "HTTP n", never a JSON parse error.
    browser.execute_script(
        "window.realFetch = window.fetch;"
        "window.fetch = async () => new Response('<html>Bad gateway</html>', {status: 502,"
        " headers: {'Content-Type': 'text/html'}});"
    )
    proxy = call(browser, "POST", "/api/continue", {"json": {"prompt": "x"}})
    browser.execute_script("window.fetch = window.realFetch;")
    assert proxy["status"] == 502 and proxy["data"] is None
    assert proxy["error"] == "HTTP 502"
    assert proxy["thrown"] == {"message": "HTTP 502", "status": 502}

    # A success whose body is not JSON (a static file): ok, no data, no error.
    css = call(browser, "GET", "/static/app.css")
    assert css["ok"] and css["data"] is None and css["error"] == ""

    # A network failure rejects (the pages' catch shows it).
    gone = call(browser, "GET", "http://127.0.0.1:9/api/resolve?q=x")
    assert "rejected" in gone and "Failed to fetch" in gone["rejected"]
