/* Job helpers for pages: start a job, follow its progress, show its result.
 *
 *   <script src="{{ url_for('jobs.static', filename='jobs.js') }}"></script>   (after the base template's api.js)
 *   const job = await submitJob("mad.simulate", {steps: 100});     // rejects with the API's message
 *   watchJob(job.id, j => bar.style.width = 100 * j.progress + "%", j => show(j.result || j.error));
 *   // or all at once: a progress bar, its message and a Cancel button inside `container`
 *   jobProgress(container, job.id, {onDone: j => show(j)});
 *
 * Polling (not server-sent events) so that it works behind any proxy and with any number of
 * server workers: every 250 ms at first, slowing to every 1.5 s for long jobs.
 *
 * A job is read and cancelled with its key: pass the submission's answer ({id, status_url, ...}, whose URLs carry
 * ?key=) wherever a job is expected. Every job this browser starts is remembered in local storage (rememberedJobs()),
 * which is how the /jobs page lists "my jobs".
 */
(function (global) {
  "use strict";

  const FINISHED = ["done", "failed", "cancelled"];

  const STORE_KEY = "coolpapers.jobs";
  const REMEMBER_MAX = 200;

  /* The jobs this browser started, newest first: [{id, kind, status_url, result_url, created}]. */
  function rememberedJobs() {
    try {
      const list = JSON.parse(global.localStorage.getItem(STORE_KEY) || "[]");
      return Array.isArray(list) ? list.filter((j) => j && typeof j.id === "string" && typeof j.status_url === "string") : [];
    } catch (e) {
      return [];
    }
  }

  function rememberJob(job, kind) {
    if (!job || typeof job !== "object" || !job.status_url) return;
    const entry = {id: job.id || job.job_id, kind: job.kind || kind || "", status_url: job.status_url,
                   result_url: job.result_url || "", created: Date.now() / 1000};
    const list = rememberedJobs().filter((j) => j.id !== entry.id);
    list.unshift(entry);
    try { global.localStorage.setItem(STORE_KEY, JSON.stringify(list.slice(0, REMEMBER_MAX))); } catch (e) { /* full */ }
  }

  function forgetJob(id) {
    try {
      global.localStorage.setItem(STORE_KEY, JSON.stringify(rememberedJobs().filter((j) => j.id !== id)));
    } catch (e) { /* storage disabled */ }
  }

  /* Where a job lives: its status_url (with ?key=) when we have it, else the bare id (the owner's token). */
  function statusUrl(ref) {
    if (ref && typeof ref === "object") return ref.status_url || `/api/jobs/${encodeURIComponent(ref.id || ref.job_id)}`;
    const known = rememberedJobs().find((j) => j.id === ref);
    return known ? known.status_url : `/api/jobs/${encodeURIComponent(ref)}`;
  }

  function jobId(ref) {
    return ref && typeof ref === "object" ? (ref.id || ref.job_id) : ref;
  }

  /* Queue a job; resolves to {id, job_key, kind, status, status_url, result_url}; rejects with Error(API message). */
  async function submitJob(kind, params) {
    const job = await api.json("POST", "/api/jobs", {json: {kind: kind, params: params || {}}});
    rememberJob(job, kind);
    return job;
  }

  /* Ask to cancel; resolves to the job as it is now. */
  function cancelJob(ref) {
    return api.json("DELETE", statusUrl(ref));
  }

  /* Follow job `id`: onProgress(job) after each poll while it is queued or running, then onDone(job)
   * once, when it is done, failed or cancelled. A result stored aside (result_external) is fetched
   * first, so job.result is always filled in when done (opts.fetchResult=false skips that).
   * Returns {stop()} to stop following. */
  function watchJob(ref, onProgress, onDone, opts) {
    const id = jobId(ref);
    const url = statusUrl(ref);
    const options = Object.assign({fetchResult: true, minDelay: 250, maxDelay: 1500}, opts || {});
    let stopped = false;
    let timer = null;
    let delay = options.minDelay;
    let failures = 0;

    async function finish(job) {
      if (job.status === "done" && job.result_external && options.fetchResult && job.result_url) {
        try {
          job.result = await api.json("GET", job.result_url);
        } catch (e) {
          job.result = null;
          job.result_error = e.message;
        }
      }
      if (!stopped && onDone) onDone(job);
      stopped = true;
    }

    async function poll() {
      if (stopped) return;
      let job;
      try {
        job = await api.json("GET", url);
        failures = 0;
      } catch (e) {
        if (e.status === 404 || e.status === 403) {
          await finish({id: id, status: "failed", progress: 0, message: "", error: e.message});
          return;
        }
        failures += 1;  // a network blip or a restarting server: keep trying, more slowly
        timer = setTimeout(poll, Math.min(options.maxDelay * 4, options.minDelay * 2 ** failures));
        return;
      }
      if (stopped) return;
      if (FINISHED.includes(job.status)) {
        if (onProgress) onProgress(job);
        await finish(job);
        return;
      }
      if (onProgress) onProgress(job);
      delay = Math.min(options.maxDelay, delay * 1.25);
      timer = setTimeout(poll, delay);
    }

    poll();
    return {
      stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;  // text only: never HTML from the server
    return node;
  }

  /* A progress bar, status line and Cancel button for job `id`, appended to `container`.
   * opts.onDone(job) runs when it finishes. Returns the watcher ({stop()}). */
  function jobProgress(container, ref, opts) {
    const options = opts || {};
    const id = jobId(ref);
    if (ref && typeof ref === "object") rememberJob(ref);
    const box = el("div", "job-progress");
    box.dataset.jobId = id;
    const bar = el("div", "progress");
    const fill = el("div");
    bar.appendChild(fill);
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    const line = el("div", "job-line");
    const status = el("span", "job-status", "queued");
    const message = el("span", "job-message", "");
    const cancel = el("button", "job-cancel", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => {
      cancel.disabled = true;
      cancelJob(ref).catch((e) => { message.textContent = e.message; });
    });
    line.append(status, " ", message, " ", cancel);
    box.append(bar, line);
    container.appendChild(box);

    function show(job) {
      const percent = Math.round(100 * (job.progress || 0));
      fill.style.width = percent + "%";
      bar.setAttribute("aria-valuenow", String(percent));
      status.textContent = job.status === "running" ? `${percent}%` : job.status;
      status.dataset.status = job.status;
      message.textContent = job.status === "failed" || job.status === "cancelled" ? (job.error || "") : (job.message || "");
    }

    return watchJob(ref, show, (job) => {
      show(job);
      cancel.remove();
      box.dataset.status = job.status;
      if (options.onDone) options.onDone(job);
    }, options);
  }

  global.rememberedJobs = rememberedJobs;
  global.rememberJob = rememberJob;
  global.forgetJob = forgetJob;
  global.submitJob = submitJob;
  global.cancelJob = cancelJob;
  global.watchJob = watchJob;
  global.jobProgress = jobProgress;
})(window);
