/* The /attention page: stored-experiment charts, scoring a text, and the relative-position heat map.
 * Data comes from the page's JSON block (#attention-data); the API is called through api.js; charts are chart.js.
 * Errors are shown next to the field they concern (the API names it in `field`), and a failed request clears
 * the results it would have replaced, so nothing stale stays on the page.
 */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("attention-data").textContent);
  const STORED = DATA.stored;
  const LABELS = {};  // variant id -> readable label
  if (STORED) STORED.results.forEach((r) => { LABELS[r.variant] = r.label; });
  const baselineLike = (name) => name.startsWith("rope") || name.startsWith("pi");
  const lengthAxis = (lengths) => ({
    xLabel: "evaluation length T (bytes, log scale)", logX: 2, xTicks: lengths, legend: "below",
    markers: [{ x: DATA.trainLen, label: `training length N = ${DATA.trainLen}` }],
  });

  function drawExperiment() {
    if (!STORED) return;
    const shown = DATA.defaults.filter((name) => name in LABELS);
    const lengths = [...new Set(STORED.results.map((r) => r.T))].sort((a, b) => a - b);
    const series = (set, key, scale) => shown.map((name) => {
      const rows = STORED.results.filter((r) => r.variant === name && r.set === set).sort((a, b) => a.T - b.T);
      return {
        name: LABELS[name],
        dashed: baselineLike(name),
        dots: true,
        points: rows.map((r) => [r.T, r[key] * scale]),
        errors: rows.map((r) => [r[`${key}_low`] * scale, r[`${key}_high`] * scale]),  // 95% intervals
      };
    });
    drawLineChart(document.getElementById("chart-nonrep"), series("non-rep", "acc", 100),
      Object.assign({ title: "non-rep: accuracy vs length (95% intervals)", yLabel: "accuracy %" }, lengthAxis(lengths)));
    drawLineChart(document.getElementById("chart-rep"), series("rep", "acc_second_half", 100),
      Object.assign({ title: "rep: accuracy on the copied half (95% intervals)", yLabel: "accuracy %" },
        lengthAxis(lengths)));
    drawLineChart(document.getElementById("chart-loss"), series("non-rep", "loss", 1),
      Object.assign({ title: "non-rep: loss vs length", yLabel: "nats / byte" }, lengthAxis(lengths)));
    const curves = Object.entries(STORED.train_curves).map(([model, pts]) => ({
      name: (STORED.model_labels || {})[model] || model, points: pts,
    }));
    drawLineChart(document.getElementById("chart-train"), curves,
      { title: "training loss (EMA, mean over seeds)", xLabel: "step", yLabel: "nats / byte", yMax: 3, legend: "below" });
  }

  // ---- errors next to fields -------------------------------------------------------------------------
  function setFieldError(id, message) {
    const box = document.getElementById(`${id}-error`);
    box.textContent = message || "";
    box.hidden = !message;
    const control = document.getElementById(id);
    if (control) {
      if (message) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
    }
  }

  // The control a server error concerns: its `field` ("text", "variants.1", "n", ...) mapped to an element id.
  function fieldOf(body, mapping) {
    const name = body && typeof body.field === "string" ? body.field.split(/[.[]/)[0] : "";
    return mapping[name] || null;
  }

  // ---- score -----------------------------------------------------------------------------------------
  const SCORE_FIELDS = { text: "score-text", variants: "score-variants" };

  function smooth(values, width) {
    const out = [];
    let sum = 0;
    for (let i = 0; i < values.length; i++) {
      sum += values[i];
      if (i >= width) sum -= values[i - width];
      out.push(sum / Math.min(i + 1, width));
    }
    return out;
  }

  function cell(row, text, tag) {
    const el = document.createElement(tag || "td");
    el.textContent = text;
    row.appendChild(el);
    return el;
  }

  let lastScore = null;
  function clearScore() {
    lastScore = null;
    document.getElementById("score-results").hidden = true;
    const table = document.getElementById("score-table");
    table.tHead.replaceChildren();
    table.tBodies[0].replaceChildren();
  }

  function drawScore() {
    if (!lastScore) return;
    document.getElementById("score-results").hidden = false;
    const width = Number(document.getElementById("score-smooth").value);
    const series = lastScore.variants.map((v) => ({
      name: v.label,
      dashed: baselineLike(v.name),
      points: smooth(v.losses, width).map((y, i) => [i + 1, y]),
    }));
    const marker = lastScore.bytes > lastScore.train_len
      ? [{ x: lastScore.train_len, label: `training length N = ${lastScore.train_len}` }] : [];
    drawLineChart(document.getElementById("score-chart"), series, {
      title: width > 1 ? `per-position loss (moving average of ${width} bytes)` : "per-position loss",
      xLabel: "position in the text (bytes)", yLabel: "nats / byte", yMin: 0, legend: "below", markers: marker,
    });
    const table = document.getElementById("score-table");
    const head = table.tHead, body = table.tBodies[0];
    head.replaceChildren(); body.replaceChildren();
    const hr = document.createElement("tr");
    cell(hr, "variant", "th").scope = "col";
    cell(hr, "mean loss", "th").scope = "col";
    lastScore.variants[0].bucket_mean_loss.forEach((_, b) =>
      (cell(hr, `bytes ${b * lastScore.train_len}–${(b + 1) * lastScore.train_len}`, "th").scope = "col"));
    head.appendChild(hr);
    lastScore.variants.forEach((v) => {
      const tr = document.createElement("tr");
      tr.dataset.variant = v.name;
      cell(tr, v.label, "th").scope = "row";
      cell(tr, v.mean_loss.toFixed(3));
      v.bucket_mean_loss.forEach((x) => cell(tr, x.toFixed(3)));
      body.appendChild(tr);
    });
  }

  document.getElementById("score-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("score-status"), button = document.getElementById("score-button");
    Object.values(SCORE_FIELDS).forEach((id) => setFieldError(id, ""));
    const variants = [...document.querySelectorAll("#score-variants input:checked")].map((el) => el.value);
    if (!variants.length) {
      clearScore();
      status.textContent = "";
      setFieldError("score-variants", "Pick at least one variant to score with.");
      return;
    }
    status.textContent = "scoring…"; button.disabled = true;
    try {
      const r = await api.request("POST", "/api/attention/score",
        { json: { text: document.getElementById("score-text").value, variants } });
      if (!r.ok) {
        clearScore();
        const field = fieldOf(r.data, SCORE_FIELDS);
        if (field) { setFieldError(field, r.error); status.textContent = ""; } else status.textContent = r.error;
        return;
      }
      lastScore = r.data;
      status.textContent = `${lastScore.bytes} bytes scored by ${lastScore.variants.length} variants`;
      drawScore();
    } catch (err) {
      clearScore();
      status.textContent = `The request failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById("score-smooth").addEventListener("change", drawScore);

  // ---- relative positions ----------------------------------------------------------------------------
  const RELPOS_FIELDS = { n: "relpos-n", window: "relpos-window", k: "relpos-k" };

  function syncRelposFields() {
    const mode = document.getElementById("relpos-mode").value;
    document.getElementById("relpos-window").disabled = mode === "rope";
    document.getElementById("relpos-k").disabled = mode !== "leaky";
  }

  document.getElementById("relpos-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("relpos-status"), chart = document.getElementById("relpos-chart");
    Object.values(RELPOS_FIELDS).forEach((id) => setFieldError(id, ""));
    const mode = document.getElementById("relpos-mode").value;
    const number = (id) => {
      const raw = document.getElementById(id).value.trim();
      return raw === "" ? NaN : Number(raw);
    };
    const body = { mode, n: number("relpos-n") };
    if (mode !== "rope") body.window = number("relpos-window");
    if (mode === "leaky") body.k = number("relpos-k");
    const missing = Object.entries(body).filter(([key, value]) => key !== "mode" && !Number.isFinite(value));
    const clear = () => { chart.hidden = true; status.textContent = ""; };
    if (missing.length) {
      clear();
      missing.forEach(([key]) => setFieldError(RELPOS_FIELDS[key], "Enter a number."));
      return;
    }
    status.textContent = "drawing…";
    try {
      const r = await api.request("POST", "/api/attention/relpos", { json: body });
      if (!r.ok) {
        clear();
        const field = fieldOf(r.data, RELPOS_FIELDS);
        if (field) setFieldError(field, r.error); else status.textContent = r.error;
        return;
      }
      const data = r.data;
      chart.hidden = false;
      const matrix = data.matrix.map((row) => row.map((v) => (v === null ? NaN : v)));
      drawHeatmap(chart, matrix, { title: `${mode} relative positions, n = ${data.n}`, xLabel: "key j", yLabel: "query i" });
      status.textContent = `max P = ${data.max}, ${data.distinct} distinct values`;
    } catch (err) {
      clear();
      status.textContent = `The request failed: ${err.message}`;
    }
  });
  document.getElementById("relpos-mode").addEventListener("change", syncRelposFields);

  function start() {
    syncRelposFields();
    drawExperiment();
    document.getElementById("relpos-form").requestSubmit();
  }
  if (document.readyState === "complete") start(); else window.addEventListener("load", start);
})();
