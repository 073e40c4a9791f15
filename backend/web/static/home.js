/* The home page's box: resolve first (POST /api/resolve), so that a miss is said next to the field and the text
 * stays; a hit opens the Cool Papers page, or with "Local copy" this backend's own page at the same path.
 * Without JavaScript the form goes through /go, which does the same. */
(function () {
  "use strict";
  const form = document.getElementById("go-form");
  if (!form) return;
  const box = document.getElementById("q");
  const error = document.getElementById("q-error");
  form.noValidate = true;  // our own message, also for text that is only spaces

  function say(message) {
    error.textContent = message;
    error.hidden = !message;
    if (message) box.setAttribute("aria-invalid", "true"); else box.removeAttribute("aria-invalid");
  }

  box.addEventListener("input", () => say(""));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = box.value;
    const where = event.submitter && event.submitter.value ? event.submitter.value : "cool";
    if (!text.trim()) {
      say("Type an arXiv id (2307.01850), a paper's URL, a DOI or some words of its title.");
      box.focus();
      return;
    }
    let answer;
    try {
      // POST, not /go?q=: a pasted reference list can be longer than a server takes in a URL
      answer = await api.request("POST", form.dataset.resolveUrl, {json: {selectionText: text}});
    } catch (e) {
      say(`Could not reach this backend (${e.message}); is it still running?`);
      return;
    }
    if (answer.status === 404) {
      say("No paper found in that text. Try an arXiv id (2307.01850), a paper's URL (arxiv.org/abs/…, " +
          "openreview.net/forum?id=…) or a few words of its title.");
      return;
    }
    if (answer.data && answer.data.limit === "RESOLVE_MAX_QUERY_BYTES") {
      const size = new TextEncoder().encode(text).length.toLocaleString();
      say(`That text is ${size} bytes; the box takes at most ${answer.data.limit_value.toLocaleString()}. ` +
          "Paste one reference, a paper's URL or its id.");
      return;
    }
    if (!answer.ok) {
      say(answer.error);
      return;
    }
    say("");
    const target = answer.data.target;
    const base = form.dataset.base;
    if (where === "local" && target.startsWith(base + "/")) window.location.assign(form.dataset.root + target.slice(base.length));
    else window.location.assign(target);
  });
})();
