// Throughput of resolver.js against the reference v0.2.0 regex logic on the shared vectors.
// Prints one JSON line; scripts/bench_extension.py runs it and reports the ratio.
//   node extension/test/bench_resolver.mjs tests/data/resolve.jsonl[,tests/data/reach.jsonl] [seconds-per-side]
import { readFileSync } from "node:fs";
import { resolveClick } from "../resolver.js";
import { referenceClick } from "./reference_v020.mjs";

const [vectorsPath, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 1);
const vectors = vectorsPath
  .split(",")
  .flatMap((path) => readFileSync(path, "utf8").split("\n"))
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));
const KEYS = { selection: "selectionText", link: "linkUrl", page: "pageUrl", frame: "frameUrl" };
const infos = vectors.map((v) => v.info ?? { [KEYS[v.context]]: v.input });

function rate(fn) {
  // warm up the JIT, then count calls over the time budget
  for (let i = 0; i < 200; i += 1) for (const info of infos) fn(info);
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < seconds * 1000) {
    for (const info of infos) fn(info);
    calls += infos.length;
    now = performance.now();
  }
  return (calls / (now - start)) * 1000;
}

const agree = (fn) => vectors.filter((v, i) => (fn(infos[i]) ?? null) === v.target).length;
const reference = rate(referenceClick);
const ours = rate((info) => resolveClick(info)?.target ?? null);
const reference2 = rate(referenceClick); // measured twice: the anchor's own drift
console.log(JSON.stringify({
  vectors: vectors.length,
  referencePerSecond: (reference + reference2) / 2,
  referenceDrift: Math.abs(reference - reference2) / ((reference + reference2) / 2),
  oursPerSecond: ours,
  ratio: ours / ((reference + reference2) / 2),
  oursCorrect: agree((info) => resolveClick(info)?.target),
  referenceCorrect: agree(referenceClick),
}));
