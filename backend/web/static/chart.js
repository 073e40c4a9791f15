/* Tiny dependency-free canvas charts for the backend's pages.
 *   drawLineChart(canvas, series, opts)   series: [{name, points: [[x, y], ...], color?, dashed?, dots?, errors?}]
 *   drawScatter(canvas, series, opts)     same series shape, drawn as dots
 *   drawBarChart(canvas, bars, opts)      bars: {labels: [...], series: [{name, values: [...], color?, lower?, upper?}]}
 *   errors: [[low, high], ...] per point, lower/upper: per bar; drawn as interval whiskers.
 *   drawHeatmap(canvas, matrix, opts)     matrix: rows of numbers; opts.xLabel/yLabel/title
 * opts: {title, xLabel, yLabel, logY, xMin, xMax, yMin, yMax}. Each call redraws the whole canvas.
 * Line charts and scatters also take (all optional; without them a chart looks as before):
 *   legend: "inside" (default: top left of the plot), "below" (rows under the x label: never over a curve), "none"
 *   logX: a base (e.g. 2): x on a log scale, ticks at its powers, labelled in data units
 *   xTicks: [x, ...] tick positions in data units (instead of automatic ones)
 *   markers: [{x, label, color?}] dashed vertical reference lines (e.g. the training length), label at the top
 * After drawing, a line chart describes its layout on the canvas (for tests and tools): data-legend (where the
 * legend went), data-plot ("left,top,width,height" of the plot box in CSS px), data-legend-top (y of the first
 * legend row, "below" only), data-x-ticks (the x tick labels, "|"-separated), data-markers (marker labels).
 */
(function (global) {
  "use strict";
  const PALETTE = ["#b0413e", "#2f6690", "#3a7d44", "#d68c45", "#6d597a", "#1b998b", "#7f7f7f", "#c2185b", "#5c6bc0"];
  const PAD = { left: 62, right: 16, top: 30, bottom: 46 };

  function setup(canvas) {
    const ratio = global.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width || 600;
    const height = canvas.clientHeight || canvas.height || 320;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    return { ctx, width, height };
  }

  function niceTicks(min, max, count) {
    if (!isFinite(min) || !isFinite(max)) return [];
    if (min === max) { min -= 1; max += 1; }
    const span = max - min;
    const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
    const err = (count * step0) / span;
    const step = step0 * (err <= 0.15 ? 10 : err <= 0.35 ? 5 : err <= 0.75 ? 2 : 1);
    const ticks = [];
    for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
    return ticks;
  }

  function fmt(v) {
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
    return Number(v.toPrecision(4)).toString();
  }

  function labels(ctx, width, height, opts, bottom) {
    // bottom: the plot's bottom padding (the x label sits just above its lower edge)
    const padBottom = bottom === undefined ? PAD.bottom : bottom;
    ctx.fillStyle = "#1d2330";
    if (opts.title) { ctx.font = "bold 13px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.fillText(opts.title, width / 2, 16); }
    ctx.font = "12px system-ui, sans-serif";
    if (opts.xLabel) { ctx.textAlign = "center"; ctx.fillText(opts.xLabel, PAD.left + (width - PAD.left - PAD.right) / 2, height - padBottom + PAD.bottom - 8); }
    if (opts.yLabel) {
      ctx.save(); ctx.translate(13, PAD.top + (height - PAD.top - padBottom) / 2); ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center"; ctx.fillText(opts.yLabel, 0, 0); ctx.restore();
    }
  }

  // Legend items laid out in rows of the given width: [{name, color, dashed, x, row}], and the row count.
  function legendRows(ctx, items, width) {
    ctx.font = "12px system-ui, sans-serif";
    let x = 0, row = 0;
    const placed = items.filter((it) => it[0]).map(([name, color, dashed]) => {
      const w = 24 + ctx.measureText(name).width + 14;
      if (x > 0 && x + w > width) { x = 0; row += 1; }
      const item = { name, color, dashed, x, row };
      x += w;
      return item;
    });
    return { placed, rows: placed.length ? row + 1 : 0 };
  }

  function xyPlot(canvas, series, opts, asDots) {
    opts = opts || {};
    const { ctx, width, height } = setup(canvas);
    const ty = (y) => (opts.logY ? Math.log10(y) : y);
    const logX = opts.logX ? (opts.logX === true ? 10 : Number(opts.logX)) : 0;
    const tx = (x) => (logX ? Math.log(x) / Math.log(logX) : x);
    const okX = (x) => isFinite(x) && (!logX || x > 0);
    const pts = [];
    series.forEach((s) => s.points.forEach(([x, y], j) => {
      if (okX(x) && isFinite(y) && (!opts.logY || y > 0)) pts.push([tx(x), ty(y)]);
      if (s.errors && s.errors[j]) s.errors[j].forEach((e) => { if (okX(x) && isFinite(e)) pts.push([tx(x), ty(e)]); });
    }));
    const items = series.map((s, i) => [s.name, s.color || PALETTE[i % PALETTE.length], s.dashed]);
    const below = opts.legend === "below" ? legendRows(ctx, items, width - PAD.left - PAD.right) : null;
    const bottom = PAD.bottom + (below && below.rows ? below.rows * 16 + 6 : 0);
    labels(ctx, width, height, opts, bottom);
    if (!pts.length) { ctx.fillText("no data", width / 2, height / 2); return; }
    let xMin = opts.xMin !== undefined ? tx(opts.xMin) : Math.min(...pts.map((p) => p[0]));
    let xMax = opts.xMax !== undefined ? tx(opts.xMax) : Math.max(...pts.map((p) => p[0]));
    let yMin = opts.yMin !== undefined ? ty(opts.yMin) : Math.min(...pts.map((p) => p[1]));
    let yMax = opts.yMax !== undefined ? ty(opts.yMax) : Math.max(...pts.map((p) => p[1]));
    if (xMin === xMax) { xMin -= 1; xMax += 1; }
    if (yMin === yMax) { yMin -= Math.abs(yMin) * 0.1 || 1; yMax += Math.abs(yMax) * 0.1 || 1; }
    const padY = (yMax - yMin) * 0.05; yMin -= padY; yMax += padY;
    if (logX) { const padX = (xMax - xMin) * 0.04; xMin -= padX; xMax += padX; }
    const W = width - PAD.left - PAD.right, H = height - PAD.top - bottom;
    const X = (x) => PAD.left + ((x - xMin) / (xMax - xMin)) * W;
    const Y = (y) => PAD.top + H - ((y - yMin) / (yMax - yMin)) * H;
    ctx.strokeStyle = "#e2ded6"; ctx.fillStyle = "#5b6475"; ctx.lineWidth = 1;
    ctx.textAlign = "right";
    niceTicks(yMin, yMax, 5).forEach((t) => {
      ctx.beginPath(); ctx.moveTo(PAD.left, Y(t)); ctx.lineTo(PAD.left + W, Y(t)); ctx.stroke();
      ctx.fillText(opts.logY ? fmt(Math.pow(10, t)) : fmt(t), PAD.left - 6, Y(t) + 4);
    });
    ctx.textAlign = "center";
    let xTicks;  // [position on the (transformed) axis, label]
    if (opts.xTicks) xTicks = opts.xTicks.filter(okX).map((x) => [tx(x), fmt(x)]);
    else if (logX) {
      xTicks = [];
      for (let e = Math.ceil(xMin - 1e-9); e <= xMax + 1e-9; e++) xTicks.push([e, fmt(Math.pow(logX, e))]);
    } else xTicks = niceTicks(xMin, xMax, 6).map((t) => [t, fmt(t)]);
    xTicks.filter(([t]) => t >= xMin - 1e-9 && t <= xMax + 1e-9)
      .forEach(([t, label]) => ctx.fillText(label, X(t), PAD.top + H + 16));
    ctx.strokeStyle = "#1d2330"; ctx.strokeRect(PAD.left, PAD.top, W, H);
    (opts.markers || []).filter((m) => okX(m.x) && tx(m.x) >= xMin && tx(m.x) <= xMax).forEach((m) => {
      const x = X(tx(m.x));
      ctx.strokeStyle = m.color || "#5b6475"; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(x, PAD.top); ctx.lineTo(x, PAD.top + H); ctx.stroke(); ctx.setLineDash([]);
      if (m.label) {
        ctx.fillStyle = m.color || "#5b6475"; ctx.font = "11px system-ui, sans-serif";
        ctx.textAlign = x > PAD.left + W - 80 ? "right" : "left";
        ctx.fillText(m.label, x + (ctx.textAlign === "left" ? 4 : -4), PAD.top + 12);
        ctx.font = "12px system-ui, sans-serif";
      }
    });
    series.forEach((s, i) => {
      const color = s.color || PALETTE[i % PALETTE.length];
      ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2;
      ctx.setLineDash(s.dashed ? [6, 4] : []);
      const valid = s.points.filter(([x, y]) => okX(x) && isFinite(y) && (!opts.logY || y > 0));
      if (!asDots) {
        ctx.beginPath();
        valid.forEach(([x, y], j) => (j ? ctx.lineTo(X(tx(x)), Y(ty(y))) : ctx.moveTo(X(tx(x)), Y(ty(y)))));
        ctx.stroke();
      }
      if (s.errors) whiskers(ctx, s.points.map(([x], j) => [okX(x) ? X(tx(x)) : NaN, s.errors[j] && Y(ty(s.errors[j][0])),
        s.errors[j] && Y(ty(s.errors[j][1]))]), color, 3);
      if (asDots || s.dots) {
        const r = s.radius || (asDots ? 2.2 : 3);
        valid.forEach(([x, y]) => { ctx.beginPath(); ctx.arc(X(tx(x)), Y(ty(y)), r, 0, 2 * Math.PI); ctx.fill(); });
      }
    });
    ctx.setLineDash([]);
    const legendTop = PAD.top + H + PAD.bottom + 4;
    if (below) {
      below.placed.forEach((it) => legend(ctx, [[it.name, it.color, it.dashed]], PAD.left + it.x, legendTop + it.row * 16));
    } else if (opts.legend !== "none") {
      legend(ctx, items, PAD.left + 8, PAD.top + 8);
    }
    Object.assign(canvas.dataset, {
      legend: below ? "below" : opts.legend === "none" ? "none" : "inside",
      plot: [PAD.left, PAD.top, W, H].map(Math.round).join(","),
      legendTop: below ? String(Math.round(legendTop - 6)) : "",
      xTicks: xTicks.filter(([t]) => t >= xMin - 1e-9 && t <= xMax + 1e-9).map(([, label]) => label).join("|"),
      markers: (opts.markers || []).map((m) => m.label || String(m.x)).join("|"),
    });
  }

  function whiskers(ctx, segments, color, cap) {
    ctx.strokeStyle = color; ctx.lineWidth = 1.2; ctx.setLineDash([]);
    segments.forEach(([x, y0, y1]) => {
      if (!isFinite(x) || !isFinite(y0) || !isFinite(y1)) return;
      ctx.beginPath(); ctx.moveTo(x, y0); ctx.lineTo(x, y1);
      ctx.moveTo(x - cap, y0); ctx.lineTo(x + cap, y0); ctx.moveTo(x - cap, y1); ctx.lineTo(x + cap, y1); ctx.stroke();
    });
  }

  function legend(ctx, items, x, y) {
    ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "left";
    items.filter((it) => it[0]).forEach(([name, color, dashed], i) => {
      ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.setLineDash(dashed ? [4, 3] : []);
      ctx.beginPath(); ctx.moveTo(x, y + i * 16); ctx.lineTo(x + 18, y + i * 16); ctx.stroke();
      ctx.setLineDash([]); ctx.fillStyle = "#1d2330"; ctx.fillText(name, x + 24, y + i * 16 + 4);
    });
  }

  function drawBarChart(canvas, bars, opts) {
    opts = opts || {};
    const { ctx, width, height } = setup(canvas);
    labels(ctx, width, height, opts);
    const n = bars.labels.length, k = bars.series.length;
    const values = bars.series.flatMap((s) => s.values.concat(s.upper || [])).filter(isFinite);
    if (!n || !values.length) { ctx.fillText("no data", width / 2, height / 2); return; }
    const yMax = opts.yMax ?? Math.max(...values) * 1.08, yMin = 0;
    const W = width - PAD.left - PAD.right, H = height - PAD.top - PAD.bottom - 30;
    const Y = (y) => PAD.top + H - ((y - yMin) / (yMax - yMin)) * H;
    ctx.strokeStyle = "#e2ded6"; ctx.fillStyle = "#5b6475"; ctx.textAlign = "right";
    niceTicks(yMin, yMax, 5).forEach((t) => {
      ctx.beginPath(); ctx.moveTo(PAD.left, Y(t)); ctx.lineTo(PAD.left + W, Y(t)); ctx.stroke();
      ctx.fillText(fmt(t), PAD.left - 6, Y(t) + 4);
    });
    const group = W / n, barW = Math.max(2, (group * 0.8) / k);
    bars.series.forEach((s, j) => {
      ctx.fillStyle = s.color || PALETTE[j % PALETTE.length];
      s.values.forEach((v, i) => {
        if (!isFinite(v)) return;
        const x = PAD.left + i * group + group * 0.1 + j * barW;
        ctx.fillRect(x, Y(v), barW - 1, Y(0) - Y(v));
      });
      if (s.lower && s.upper) {
        whiskers(ctx, s.values.map((_, i) => [PAD.left + i * group + group * 0.1 + j * barW + (barW - 1) / 2,
          Y(s.lower[i]), Y(s.upper[i])]), "#1d2330", Math.min(5, barW / 3));
      }
    });
    ctx.fillStyle = "#1d2330"; ctx.textAlign = "right";
    bars.labels.forEach((label, i) => {
      ctx.save(); ctx.translate(PAD.left + i * group + group / 2 + 3, PAD.top + H + 8); ctx.rotate(-Math.PI / 5);
      ctx.fillText(String(label).slice(0, 24), 0, 0); ctx.restore();
    });
    legend(ctx, bars.series.map((s, j) => [s.name, s.color || PALETTE[j % PALETTE.length]]), PAD.left + W - 150, PAD.top + 8);
  }

  function heatColor(t) {
    // viridis-like ramp from dark blue to yellow
    const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
    const p = Math.min(0.9999, Math.max(0, t)) * (stops.length - 1), i = Math.floor(p), f = p - i;
    const c = stops[i].map((v, j) => Math.round(v + f * (stops[i + 1][j] - v)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function drawHeatmap(canvas, matrix, opts) {
    opts = opts || {};
    const { ctx, width, height } = setup(canvas);
    labels(ctx, width, height, opts);
    const rows = matrix.length, cols = rows ? matrix[0].length : 0;
    if (!rows || !cols) { ctx.fillText("no data", width / 2, height / 2); return; }
    const flat = matrix.flat().filter(isFinite);
    const lo = opts.min ?? Math.min(...flat), hi = opts.max ?? Math.max(...flat);
    const W = width - PAD.left - PAD.right - 50, H = height - PAD.top - PAD.bottom;
    const cw = W / cols, ch = H / rows;
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
      const v = matrix[i][j];
      ctx.fillStyle = isFinite(v) ? heatColor((v - lo) / (hi - lo || 1)) : "#ffffff";
      ctx.fillRect(PAD.left + j * cw, PAD.top + i * ch, Math.ceil(cw), Math.ceil(ch));
    }
    ctx.strokeStyle = "#1d2330"; ctx.strokeRect(PAD.left, PAD.top, W, H);
    const bx = PAD.left + W + 14;
    for (let k = 0; k < H; k++) { ctx.fillStyle = heatColor(1 - k / H); ctx.fillRect(bx, PAD.top + k, 12, 1); }
    ctx.fillStyle = "#1d2330"; ctx.textAlign = "left";
    ctx.fillText(fmt(hi), bx + 15, PAD.top + 8); ctx.fillText(fmt(lo), bx + 15, PAD.top + H);
    ctx.textAlign = "center";
    ctx.fillText("0", PAD.left + cw / 2, PAD.top + H + 14); ctx.fillText(String(cols - 1), PAD.left + W - cw / 2, PAD.top + H + 14);
    ctx.textAlign = "right";
    ctx.fillText("0", PAD.left - 4, PAD.top + ch / 2 + 4); ctx.fillText(String(rows - 1), PAD.left - 4, PAD.top + H - ch / 2 + 4);
  }

  global.drawLineChart = (canvas, series, opts) => xyPlot(canvas, series, opts, false);
  global.drawScatter = (canvas, series, opts) => xyPlot(canvas, series, opts, true);
  global.drawBarChart = drawBarChart;
  global.drawHeatmap = drawHeatmap;
})(window);
