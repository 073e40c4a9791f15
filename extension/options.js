import { DEFAULT_SETTINGS, loadSettings, saveSettings } from "./settings.js";
import { localize, t } from "./i18n.js";

const form = document.getElementById("form");
const baseInput = document.getElementById("base");
const status = document.getElementById("status");

function show(settings) {
  baseInput.value = settings.base;
  document.getElementById(`open-${settings.openIn}`).checked = true;
}

function report(text, ok) {
  status.textContent = text;
  status.className = `status ${ok ? "ok" : "bad"}`;
}

async function save(values) {
  try {
    const stored = await saveSettings(chrome.storage.sync, values);
    show(stored);
    report(t("optionsSaved"), true);
  } catch (err) {
    report(t(err.message), false);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const openIn = form.querySelector("input[name=openIn]:checked")?.value ?? DEFAULT_SETTINGS.openIn;
  save({ base: baseInput.value, openIn });
});

document.getElementById("reset").addEventListener("click", () => save({ ...DEFAULT_SETTINGS }));

localize();
document.getElementById("default-base").textContent = DEFAULT_SETTINGS.base;
loadSettings(chrome.storage.sync).then(show, (err) => report(String(err), false));
