/* Tiny dependency-free canvas charts for the backend's pages.
 *   drawLineChart(canvas, series, opts)   series: [{name, points: [[x, y], ...], color?, dashed?, dots?, errors?}]
 *   drawScatter(canvas, series, opts)     same series shape, drawn as dots
 *   drawBarChart(canvas, bars, opts)      bars: {labels: [...], series: [{name, values: [...], color?, lower?, upper?}]}
 *   errors: [[low, high], ...] per point, lower/upper: per bar; drawn as interval whiskers.
 *   drawHeatmap(canvas, matrix, opts)     matrix: rows of numbers; opts.xLabel/yLabel/title
 * opts: {title, xLabel, yLabel, logY, xMin, xMax, yMin, yMax}. Each call redraws the whole canvas.
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

  function labels(ctx, width, height, opts) {
    ctx.fillStyle = "#1d2330";
    if (opts.title) { ctx.font = "bold 13px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.fillText(opts.title, width / 2, 16); }
    ctx.font = "12px system-ui, sans-serif";
    if (opts.xLabel) { ctx.textAlign = "center"; ctx.fillText(opts.xLabel, PAD.left + (width - PAD.left - PAD.right) / 2, height - 8); }
    if (opts.yLabel) {
      ctx.save(); ctx.translate(13, PAD.top + (height - PAD.top - PAD.bottom) / 2); ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center"; ctx.fillText(opts.yLabel, 0, 0); ctx.restore();
    }
  }

  function xyPlot(canvas, series, opts, asDots) {
    opts = opts || {};
    const { ctx, width, height } = setup(canvas);
    const ty = (y) => (opts.logY ? Math.log10(y) : y);
    const pts = [];
    series.forEach((s) => s.points.forEach(([x, y], j) => {
      if (isFinite(x) && isFinite(y) && (!opts.logY || y > 0)) pts.push([x, ty(y)]);
      if (s.errors && s.errors[j]) s.errors[j].forEach((e) => { if (isFinite(x) && isFinite(e)) pts.push([x, ty(e)]); });
    }));
    labels(ctx, width, height, opts);
    if (!pts.length) { ctx.fillText("no data", width / 2, height / 2); return; }
    let xMin = opts.xMin ?? Math.min(...pts.map((p) => p[0])), xMax = opts.xMax ?? Math.max(...pts.map((p) => p[0]));
    let yMin = opts.yMin !== undefined ? ty(opts.yMin) : Math.min(...pts.map((p) => p[1]));
    let yMax = opts.yMax !== undefined ? ty(opts.yMax) : Math.max(...pts.map((p) => p[1]));
    if (xMin === xMax) { xMin -= 1; xMax += 1; }
    if (yMin === yMax) { yMin -= Math.abs(yMin) * 0.1 || 1; yMax += Math.abs(yMax) * 0.1 || 1; }
    const padY = (yMax - yMin) * 0.05; yMin -= padY; yMax += padY;
    const W = width - PAD.left - PAD.right, H = height - PAD.top - PAD.bottom;
    const X = (x) => PAD.left + ((x - xMin) / (xMax - xMin)) * W;
    const Y = (y) => PAD.top + H - ((y - yMin) / (yMax - yMin)) * H;
    ctx.strokeStyle = "#e2ded6"; ctx.fillStyle = "#5b6475"; ctx.lineWidth = 1;
    ctx.textAlign = "right";
    niceTicks(yMin, yMax, 5).forEach((t) => {
      ctx.beginPath(); ctx.moveTo(PAD.left, Y(t)); ctx.lineTo(PAD.left + W, Y(t)); ctx.stroke();
      ctx.fillText(opts.logY ? fmt(Math.pow(10, t)) : fmt(t), PAD.left - 6, Y(t) + 4);
    });
    ctx.textAlign = "center";
    niceTicks(xMin, xMax, 6).forEach((t) => ctx.fillText(fmt(t), X(t), PAD.top + H + 16));
    ctx.strokeStyle = "#1d2330"; ctx.strokeRect(PAD.left, PAD.top, W, H);
    series.forEach((s, i) => {
      const color = s.color || PALETTE[i % PALETTE.length];
      ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2;
      ctx.setLineDash(s.dashed ? [6, 4] : []);
      const valid = s.points.filter(([x, y]) => isFinite(x) && isFinite(y) && (!opts.logY || y > 0));
      if (!asDots) {
        ctx.beginPath();
        valid.forEach(([x, y], j) => (j ? ctx.lineTo(X(x), Y(ty(y))) : ctx.moveTo(X(x), Y(ty(y)))));
        ctx.stroke();
      }
      if (s.errors) whiskers(ctx, s.points.map(([x], j) => [X(x), s.errors[j] && Y(ty(s.errors[j][0])),
        s.errors[j] && Y(ty(s.errors[j][1]))]), color, 3);
      if (asDots || s.dots) {
        const r = s.radius || (asDots ? 2.2 : 3);
        valid.forEach(([x, y]) => { ctx.beginPath(); ctx.arc(X(x), Y(ty(y)), r, 0, 2 * Math.PI); ctx.fill(); });
      }
    });
    ctx.setLineDash([]);
    legend(ctx, series.map((s, i) => [s.name, s.color || PALETTE[i % PALETTE.length], s.dashed]), PAD.left + 8, PAD.top + 8);
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
