import { test } from "node:test";
import assert from "node:assert/strict";
import { normalizeBase, sanitizeSettings, saveSettings, loadSettings, DEFAULT_SETTINGS } from "../settings.js";

test("bases are normalised: no trailing slash, path kept", () => {
  assert.equal(normalizeBase(" https://papers.cool/ "), "https://papers.cool");
  assert.equal(normalizeBase("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
  assert.equal(normalizeBase("https://example.org/cool//"), "https://example.org/cool");
});

test("bad bases are refused with an i18n key", () => {
  const cases = [["", "errorBaseEmpty"], ["papers.cool", "errorBaseInvalid"], ["javascript:alert(1)", "errorBaseScheme"],
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
  await assert.rejects(saveSettings(area, { base: "nope", openIn: "newTab" }), { message: "errorBaseInvalid" });
  assert.deepEqual(data, {});
  await saveSettings(area, { base: "http://localhost:8000/", openIn: "currentTab" });
  assert.deepEqual(await loadSettings(area), { base: "http://localhost:8000", openIn: "currentTab" });
});
