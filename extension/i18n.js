// Fill extension pages from _locales: data-i18n (text), data-i18n-placeholder, data-i18n-title.
export function t(key, substitutions) {
  return chrome.i18n.getMessage(key, substitutions) || key;
}

export function localize(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  document.documentElement.lang = chrome.i18n.getUILanguage();
}
