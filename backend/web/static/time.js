/* Times for people: always with the date, in the viewer's own time zone and locale, the zone named.
 * Loaded by the base template, so every page has it.
 *
 *   formatTime(1764772279)          -> "Dec 3, 2025, 3:31:19 PM GMT+1" (seconds since the epoch, a Date or ISO text)
 *   timeElement(1764772279)         -> <time datetime="2025-12-03T14:31:19.000Z" title="2025-12-03 14:31:19 UTC">…</time>
 *   <time data-epoch="1764772279">  in a template: filled in with formatTime when the page loads
 *   localTimes("cut delivered at 2025-12-03T14:31:19.250Z") -> "cut delivered at Dec 3, 2025, 3:31:19 PM GMT+1"
 *                                   (UTC instants inside a server's message, as the viewer reads times)
 * Anything that is not a time gives "" (and an empty <time>).
 */
(function (global) {
  "use strict";

  const FORMAT = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });

  function toDate(value) {
    if (value === null || value === undefined || value === "") return null;
    const date = value instanceof Date ? value : new Date(typeof value === "number" ? value * 1000 : value);
    return isNaN(date.getTime()) ? null : date;
  }

  function formatTime(value) {
    const date = toDate(value);
    return date ? FORMAT.format(date) : "";
  }

  // An ISO 8601 instant with its zone (Z or +hh:mm), as servers write them into messages.
  const ISO_INSTANT = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})/g;

  function localTimes(text) {
    const message = text === null || text === undefined ? "" : String(text);
    return message.replace(ISO_INSTANT, (instant) => formatTime(instant) || instant);
  }

  function utcText(date) {
    return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function fill(node, value) {
    const date = toDate(value);
    node.textContent = date ? FORMAT.format(date) : "";
    if (date) {
      node.dateTime = date.toISOString();
      node.title = utcText(date);
    }
    return node;
  }

  function timeElement(value) {
    return fill(document.createElement("time"), value);
  }

  function fillAll(root) {
    for (const node of (root || document).querySelectorAll("time[data-epoch]")) fill(node, Number(node.dataset.epoch));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => fillAll());
  else fillAll();

  global.formatTime = formatTime;
  global.localTimes = localTimes;
  global.timeElement = timeElement;
  global.fillTimes = fillAll;
})(window);
