/* The jobs page: start a job, follow it with jobProgress, and list the jobs this browser started (their keys are in
 * local storage; refreshed every second). */
(function () {
  "use strict";

  const form = document.getElementById("job-form");
  const kind = document.getElementById("job-kind");
  const params = document.getElementById("job-params");
  const summary = document.getElementById("job-kind-summary");
  const formError = document.getElementById("job-form-error");
  const current = document.getElementById("job-current");
  const resultBox = document.getElementById("job-result");
  const filter = document.getElementById("jobs-filter");
  const tbody = document.querySelector("#jobs-table tbody");
  const empty = document.getElementById("jobs-empty");
  const listError = document.getElementById("jobs-list-error");
  const detail = document.getElementById("job-detail");
  const detailId = document.getElementById("job-detail-id");
  const detailBody = document.getElementById("job-detail-body");
  const SHOW_CHARS = 20000;  // a result of megabytes would freeze the page; the link has it all

  let watcher = null;

  function showJson(pre, value, url) {
    let text = JSON.stringify(value, null, 2);
    if (text.length > SHOW_CHARS) text = text.slice(0, SHOW_CHARS) + `\n… (${text.length} characters; full result: ${url})`;
    pre.textContent = text;
    pre.hidden = false;
  }

  function fillExample() {
    const option = kind.selectedOptions[0];
    if (!option) return;
    params.value = JSON.stringify(JSON.parse(option.dataset.example || "{}"), null, 1);
    summary.textContent = option.title;
  }

  function showError(node, message) {
    node.textContent = message;
    node.hidden = !message;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(formError, "");
    let body;
    try {
      body = JSON.parse(params.value || "{}");
    } catch (e) {
      showError(formError, `Params are not valid JSON: ${e.message}`);
      return;
    }
    let job;
    try {
      job = await submitJob(kind.value, body);
    } catch (e) {
      showError(formError, e.message);
      return;
    }
    if (watcher) watcher.stop();
    current.replaceChildren();
    resultBox.hidden = true;
    watcher = jobProgress(current, job, {
      onDone(done) {
        if (done.status === "done") showJson(resultBox, done.result, done.result_url);
        refresh();
      },
    });
    refresh();
  });

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  async function showResult(job) {
    detailId.textContent = job.id;
    detail.hidden = false;
    detail.scrollIntoView({block: "nearest"});
    detailBody.textContent = "loading…";
    try {
      showJson(detailBody, await api.json("GET", job.result_url), job.result_url);
    } catch (e) {
      detailBody.textContent = `Could not load the result: ${e.message}`;
    }
  }

  // What a row shows; a row whose signature is unchanged is kept, so a refresh never swaps
  // the node under the user's pointer or keyboard focus.
  function signature(job) {
    return JSON.stringify([job.status, job.progress, job.message, job.error, job.started_at, job.kind]);
  }

  function row(job) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    tr.dataset.signature = signature(job);
    tr.dataset.status = job.status;
    const id = cell(job.id.slice(0, 8));
    id.title = job.id;
    const status = cell(job.status, "job-status");
    status.dataset.status = job.status;
    const progressCell = cell(undefined, "progress-cell");
    const bar = document.createElement("div");
    bar.className = "progress";
    const fill = document.createElement("div");
    fill.style.width = `${Math.round(100 * job.progress)}%`;
    bar.appendChild(fill);
    progressCell.appendChild(bar);
    const message = job.status === "failed" || job.status === "cancelled" ? job.error || "" : job.message;
    const started = job.started_at ? new Date(job.started_at * 1000).toLocaleTimeString() : "";
    const actions = cell();
    if (job.status === "queued" || job.status === "running") {
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "secondary job-row-cancel";
      cancel.textContent = "Cancel";
      cancel.addEventListener("click", () => { cancel.disabled = true; cancelJob(job).then(refresh, refresh); });
      actions.appendChild(cancel);
    } else if (job.status === "done") {
      const show = document.createElement("button");
      show.type = "button";
      show.className = "secondary job-row-result";
      show.textContent = "Result";
      show.addEventListener("click", () => showResult(job));
      actions.appendChild(show);
    }
    tr.append(id, cell(job.kind), status, progressCell, cell(message, "message-cell"), cell(started), actions);
    return tr;
  }

  function render(jobs) {
    const kept = new Map();
    for (const tr of tbody.rows) kept.set(tr.dataset.jobId, tr);
    jobs.forEach((job, index) => {
      const old = kept.get(job.id);
      const wanted = old && old.dataset.signature === signature(job) ? old : row(job);
      const at = tbody.rows[index];
      if (at === wanted) return;
      if (old && old !== wanted) old.remove();
      tbody.insertBefore(wanted, tbody.rows[index] || null);
    });
    while (tbody.rows.length > jobs.length) tbody.rows[tbody.rows.length - 1].remove();
  }

  const SHOWN = 50;

  /* The remembered jobs as the server sees them now; a job the server no longer has is forgotten. */
  async function myJobs() {
    const remembered = rememberedJobs().slice(0, SHOWN);
    const answers = await Promise.all(remembered.map((j) => api.request("GET", j.status_url)));
    const jobs = [];
    let failure = "";
    answers.forEach((r, i) => {
      if (r.ok) jobs.push(r.data);
      else if (r.status === 404) forgetJob(remembered[i].id);  // pruned on the server
      else failure = failure || r.error;
    });
    return {jobs: jobs, failure: failure};
  }

  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const found = await myJobs();
      const jobs = found.jobs.filter((j) => !filter.value || j.status === filter.value);
      render(jobs);
      tbody.dataset.refreshes = Number(tbody.dataset.refreshes || 0) + 1;  // lets tests wait for a refresh
      empty.hidden = jobs.length > 0;
      showError(listError, found.failure ? `Could not read some jobs: ${found.failure}` : "");
    } catch (e) {
      showError(listError, `Could not list jobs: ${e.message}`);
    } finally {
      refreshing = false;
    }
  }

  const tokenInput = document.getElementById("api-token");
  tokenInput.value = api.getToken();
  tokenInput.addEventListener("change", () => { api.setToken(tokenInput.value.trim()); refresh(); });

  kind.addEventListener("change", fillExample);
  filter.addEventListener("change", refresh);
  fillExample();
  refresh();
  setInterval(refresh, 1000);
})();
