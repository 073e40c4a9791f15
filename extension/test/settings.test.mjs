import { test } from "node:test";
import assert from "node:assert/strict";
import { normalizeBase, sanitizeSettings, saveSettings, loadSettings, suggestBase, DEFAULT_SETTINGS } from "../settings.js";

test("bases are normalised: no trailing slash, path kept", () => {
  assert.equal(normalizeBase(" https://papers.cool/ "), "https://papers.cool");
  assert.equal(normalizeBase("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
  assert.equal(normalizeBase("https://example.org/cool//"), "https://example.org/cool");
});

test("bad bases are refused with an i18n key", () => {
  const cases = [["", "errorBaseEmpty"], ["not a url", "errorBaseInvalid"], ["javascript:alert(1)", "errorBaseScheme"],
    ["ftp://x.org", "errorBaseScheme"], ["https://x.org/?a=1", "errorBaseExtra"], ["https://x.org/#f", "errorBaseExtra"],
    ["https://u:p@x.org", "errorBaseExtra"]];
  for (const [value, key] of cases) assert.throws(() => normalizeBase(value), { message: key }, value);
});

test("stored values are sanitised: unknown modes and bad bases fall back to the defaults", () => {
  assert.deepEqual(sanitizeSettings(undefined), DEFAULT_SETTINGS);
  assert.deepEqual(sanitizeSettings({ base: "javascript:x", openIn: "popup" }), DEFAULT_SETTINGS);
  assert.deepEqual(sanitizeSettings({ base: "http://h:1/", openIn: "currentTab" }), { base: "http://h:1", openIn: "currentTab" });
});

test("save validates before writing; load reads back", async () => {
  const data = {};
  const area = { get: async () => ({ ...data }), set: async (v) => Object.assign(data, v) };
  await assert.rejects(saveSettings(area, { base: "no pe", openIn: "newTab" }), { message: "errorBaseInvalid" });
  assert.deepEqual(data, {});
  await saveSettings(area, { base: "http://localhost:8000/", openIn: "currentTab" });
  assert.deepEqual(await loadSettings(area), { base: "http://localhost:8000", openIn: "currentTab" });
});

test("a base typed without a scheme is refused with the URL meant: http:// for a local backend", () => {
  const cases = [
    ["127.0.0.1:5602", "http://127.0.0.1:5602"],
    ["localhost:5602", "http://localhost:5602"],
    ["[::1]:5000", "http://[::1]:5000"],
    ["192.168.1.20:5000/cool", "http://192.168.1.20:5000/cool"],
    ["stove-box:5000", "http://stove-box:5000"],
    ["papers.cool", "https://papers.cool"],
    ["example.org/cool", "https://example.org/cool"],
  ];
  for (const [typed, meant] of cases) {
    assert.throws(() => normalizeBase(typed), (err) => err.message === "errorBaseNoScheme" && err.suggestion === meant, typed);
    assert.equal(normalizeBase(meant), meant.replace(/\/$/, ""));
  }
  for (const text of ["not a url", "javascript:alert(1)", "a b:1", "http://x.org"]) assert.equal(suggestBase(text), null, text);
});
