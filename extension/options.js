import { DEFAULT_SETTINGS, loadSettings, saveSettings } from "./settings.js";
import { localize, t } from "./i18n.js";

const form = document.getElementById("form");
const baseInput = document.getElementById("base");
const status = document.getElementById("status");

function show(settings) {
  baseInput.value = settings.base;
  document.getElementById(`open-${settings.openIn}`).checked = true;
}

const useSuggestion = document.getElementById("use-suggestion");

function report(text, ok, suggestion = null) {
  status.textContent = text;
  status.className = `status ${ok ? "ok" : "bad"}`;
  // "127.0.0.1:5602" without a scheme: offer the URL meant, one click away
  useSuggestion.hidden = !suggestion;
  if (suggestion) {
    useSuggestion.textContent = t("optionsUseSuggestion", [suggestion]);
    useSuggestion.dataset.base = suggestion;
  }
}

function currentMode() {
  return form.querySelector("input[name=openIn]:checked")?.value ?? DEFAULT_SETTINGS.openIn;
}

async function save(values) {
  try {
    const stored = await saveSettings(chrome.storage.sync, values);
    show(stored);
    report(t("optionsSaved"), true);
  } catch (err) {
    const suggestion = err.suggestion ?? null;
    report(suggestion ? t(err.message, [suggestion]) : t(err.message), false, suggestion);
  }
}

useSuggestion.addEventListener("click", () => {
  baseInput.value = useSuggestion.dataset.base ?? "";
  save({ base: baseInput.value, openIn: currentMode() });
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  save({ base: baseInput.value, openIn: currentMode() });
});

document.getElementById("reset").addEventListener("click", () => save({ ...DEFAULT_SETTINGS }));

localize();
document.getElementById("default-base").textContent = DEFAULT_SETTINGS.base;
loadSettings(chrome.storage.sync).then(show, (err) => report(String(err), false));
