// Reads a JSON array of cases from stdin, prints the JS resolver's answers as a JSON array.
// A case is {text, context, base} or {info, base}. Used by test_resolver_parity.py.
import { resolve, resolveClick } from "../../extension/resolver.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const cases = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const out = cases.map((c) => {
  try {
    return c.info ? resolveClick(c.info, c.base) : resolve(c.text, c.context, c.base);
  } catch (err) {
    return { error: String(err.message) };
  }
});
process.stdout.write(JSON.stringify(out));
