// Drives Debian's firefox-esr over WebDriver BiDi with puppeteer-core (no geckodriver, no browser download):
// installs the Firefox build of the extension, then, from the extension's own options page, sends the
// service worker's test messages through the same handler the context menu calls (handleClick), checks
// the pages the redirects land on, the content scripts on local copies of paper pages (served under their
// real host names: network.dns.localDomains), the popup's way back and the omnibox/command handlers.
// Run by tests/e2e/test_firefox_e2e.py:  node drive_firefox.mjs <config.json>  -> one JSON report on stdout.
import { readFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = { errors: [], vectors: [], content: {}, popup: {}, handlers: {} };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const WAIT_MS = config.waitMs ?? 15000;

async function until(what, fn, timeout = WAIT_MS) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

// BiDi reports no load events for moz-extension:// documents: navigate, then wait until the page answers.
async function openExtensionPage(page, path) {
  const url = `moz-extension://${config.uuid}/${path}`;
  await page.goto(url, { timeout: 2000 }).catch(() => {});
  await until(`${path} to load`, () =>
    page.evaluate((wanted) => location.href === wanted && document.readyState === "complete" && typeof chrome === "object", url),
  );
}

async function section(name, fn) {
  const started = Date.now();
  process.stderr.write(`firefox: ${name}...\n`);
  try {
    await fn();
  } catch (err) {
    report.errors.push(`${name}: ${err.stack ?? err}`);
  }
  process.stderr.write(`firefox: ${name} done in ${Date.now() - started} ms\n`);
}

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: config.firefox,
  headless: true,
  acceptInsecureCerts: true, // the paper hosts' certificate is self-signed
  // navigation to moz-extension:// pages is a privileged operation for WebDriver BiDi
  args: ["--remote-allow-system-access"],
  extraPrefsFirefox: {
    "extensions.webextensions.uuids": JSON.stringify({ [config.geckoId]: config.uuid }),
    "network.dns.localDomains": config.hosts.join(","),
    "network.proxy.type": 0,
  },
});
try {
  report.version = await browser.version();
  report.installed = await browser.installExtension(config.extensionDir);
  const home = await browser.newPage();
  await openExtensionPage(home, "options.html");
  const call = (message) => home.evaluate((m) => chrome.runtime.sendMessage(m), message);

  await section("vectors", async () => {
    for (const vector of config.vectors) {
      const entry = { info: vector.info, expected: vector.target };
      entry.result = await call({ type: "redirect", info: vector.info });
      if (entry.result?.ok) {
        const target = entry.result.resolution.target;
        const found = await browser.waitForTarget((t) => t.url() === target, { timeout: WAIT_MS });
        const landed = await found.page();
        await until("the page to render", () => landed.evaluate(() => document.readyState === "complete"));
        entry.landed = await landed.evaluate(() => ({
          url: location.href,
          title: document.title,
          ids: [...document.querySelectorAll("article.paper")].map((a) => a.dataset.id),
          heading: document.getElementById("heading")?.textContent ?? "",
        }));
        await landed.close();
      }
      report.vectors.push(entry);
    }
  });

  await section("handlers", async () => {
    report.handlers.menus = await call({ type: "createMenus" });
    report.handlers.omniboxPaper = await call({ type: "omniboxSuggest", text: "https://openreview.net/forum?id=B18WgG-CZ" });
    report.handlers.omniboxUrl = await call({ type: "omniboxSuggest", text: "https://github.com/bojone/rerope" });
    report.handlers.pasteUrl = await call({ type: "redirectText", text: "https://dl.acm.org/doi/10.1145/3292500.3330701" });
  });

  const port = config.pagesPort;
  async function linkOn(url, selector) {
    const page = await browser.newPage();
    await page.goto(url, { waitUntil: "load" });
    const href = await until(`${selector} on ${url} (page: ${await page.evaluate(() => document.title).catch(() => "?")})`, () =>
      page.evaluate((css) => {
        const links = document.querySelectorAll("a.cool-papers-link");
        const wanted = document.querySelector(css);
        return links.length === 1 && wanted ? wanted.href : null;
      }, selector),
    );
    return { page, href };
  }

  for (const [name, url, selector] of config.contentPages) {
    await section(`content script on ${name}`, async () => {
      const { page, href } = await linkOn(url.replace("{port}", port), selector);
      report.content[name] = href;
      await page.close();
    });
  }

  await section("ads pushState", async () => {
    const { page, href } = await linkOn(`https://ui.adsabs.harvard.edu:${port}/abs/2020arXiv201207436Z/abstract`, "h2 a.cool-papers-link");
    const steps = [href];
    await page.click("#next"); // history.pushState, then the app re-renders
    steps.push(
      await until("the link to follow pushState", () =>
        page.evaluate(() => {
          const links = document.querySelectorAll("a.cool-papers-link");
          const settled = links.length === 1 && links[0].classList.contains("inline") && document.querySelector("#search");
          return settled && location.pathname.includes("2014arXiv") && links[0].href.endsWith("/arxiv/1401.1234") ? links[0].href : null;
        }),
      ),
    );
    await page.click("#search");
    steps.push(
      await until("no link on a search page", () =>
        page.evaluate(() => (document.querySelector("h2.s-results-title") && !document.querySelector("a.cool-papers-link") ? "none" : null)),
      ),
    );
    report.content.ads = steps;
    await page.close();
  });

  await section("popup way back", async () => {
    const target = `${config.backend}/arxiv/2307.01850`;
    const tab = await home.evaluate((url) => chrome.tabs.create({ url, active: false }), target);
    const popup = await browser.newPage();
    await openExtensionPage(popup, `popup.html?tab=${tab.id}&url=${encodeURIComponent(target)}`);
    await until("the popup", () => popup.evaluate(() => document.body.dataset.ready === "1"));
    report.popup.sources = await popup.evaluate(() => [...document.querySelectorAll("#sources a")].map((a) => [a.textContent, a.href]));
    await popup.close();
    await home.evaluate((id) => chrome.tabs.remove(id), tab.id);
  });
} catch (err) {
  report.errors.push(`driver: ${err.stack ?? err}`);
} finally {
  await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(report));
