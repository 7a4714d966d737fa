#!/usr/bin/env node
// Loads a pushbench report.html in headless Chromium and checks what a reader
// would see:
//   - no console error, no page error, and no request besides the page itself
//     (the report is self-contained: a fetch, or a load its Content-Security-
//     Policy refused, shows up here);
//   - every inline <svg> is laid out with a non-zero box and holds drawn
//     geometry: lines (polyline/path/line/polygon) and shapes (rect/circle)
//     whose bounding boxes are not empty, i.e. the plot is not blank;
//   - a full-page screenshot is written as PNG.
//
// Usage: node render.mjs REPORT.html [--screenshot OUT.png]
//   (default screenshot: REPORT.png beside the report)
// Prints a JSON summary on stdout; exits 0 only if every check passed, 1 with
// one `render: FAIL ...` line per problem on stderr otherwise (Chromium failing
// to launch is a failure, never a skip), 2 for bad usage. Every wait is
// bounded and the browser is always closed.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { chromium } from 'playwright-core';

const OVERALL_TIMEOUT_MS = 45_000;
const BROWSER_LAUNCH_TIMEOUT_MS = 15_000;
const LOAD_TIMEOUT_MS = 10_000;
const CHROMIUM_PATH = '/usr/bin/chromium';
// The same flags as compat.mjs: headless, no sandbox (CI runs as root), no
// background traffic of the browser's own that could be mistaken for the page's.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets',
];
// A laptop-sized viewport: the report must read there without a horizontal scroll of the page.
const VIEWPORT = { width: 1280, height: 900 };

/** Rejects after `ms` with a message naming what was waited for. */
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs in the page: measures every <svg>. Self-contained (it is serialised
 * into the page by playwright).
 */
function measureSvgs() {
  const SHAPES = 'polyline, path, line, polygon, rect, circle, ellipse';
  const LINES = new Set(['polyline', 'path', 'line', 'polygon']);
  return Array.from(document.querySelectorAll('svg')).map((svg, index) => {
    const box = svg.getBoundingClientRect();
    let drawn = 0;
    let lines = 0;
    let texts = 0;
    for (const el of svg.querySelectorAll(SHAPES)) {
      let b;
      try {
        b = el.getBBox();
      } catch {
        continue; // not rendered (e.g. inside <defs>)
      }
      const style = getComputedStyle(el);
      const stroked = style.stroke !== 'none' && parseFloat(style.strokeWidth || '0') > 0;
      // A white fill is the chart's background, not something drawn on it.
      const filled = style.fill !== 'none' && style.fill !== 'rgb(255, 255, 255)';
      // A horizontal or vertical line has a zero-width or zero-height box; only both zero is empty.
      const nonEmpty = b.width > 0 || b.height > 0;
      if (!nonEmpty || !(stroked || filled) || style.visibility === 'hidden') continue;
      drawn += 1;
      if (LINES.has(el.tagName.toLowerCase())) lines += 1;
    }
    for (const t of svg.querySelectorAll('text')) {
      if ((t.textContent || '').trim() !== '') texts += 1;
    }
    const figure = svg.closest('figure');
    const caption = figure?.querySelector('figcaption')?.textContent?.trim() ?? null;
    return {
      index,
      caption,
      width: Math.round(box.width),
      height: Math.round(box.height),
      drawn,
      lines,
      texts,
    };
  });
}

function parseArgs(argv) {
  const args = { file: null, screenshot: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--screenshot') {
      args.screenshot = argv[++i] ?? null;
      if (!args.screenshot) return null;
    } else if (a.startsWith('-')) {
      return null;
    } else if (args.file === null) {
      args.file = a;
    } else {
      return null;
    }
  }
  return args.file ? args : null;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args) {
    console.error('usage: node render.mjs REPORT.html [--screenshot OUT.png]');
    process.exit(2);
  }
  const file = path.resolve(args.file);
  if (!existsSync(file)) {
    console.error(`render: FAIL: ${file} does not exist`);
    process.exit(2);
  }
  const screenshot = path.resolve(args.screenshot ?? file.replace(/\.html?$/i, '') + '.png');
  const pageUrl = pathToFileURL(file).href;

  let browser = null;
  const cleanup = async () => {
    if (browser) await within(5_000, 'the browser to close', browser.close()).catch(() => {});
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      console.error(`render: FAIL: interrupted by ${sig}`);
      cleanup().finally(() => process.exit(1));
    });
  }
  const overall = setTimeout(() => {
    console.error(`render: FAIL: overall timeout of ${OVERALL_TIMEOUT_MS} ms`);
    cleanup().finally(() => process.exit(1));
  }, OVERALL_TIMEOUT_MS);

  const summary = {
    ok: false,
    file,
    screenshot: null,
    console_errors: [],
    page_errors: [],
    requests: [],
    svgs: [],
    failures: [],
  };
  const failures = summary.failures;
  try {
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM_PATH,
        args: CHROMIUM_ARGS,
        timeout: BROWSER_LAUNCH_TIMEOUT_MS,
      });
    } catch (e) {
      throw new Error(`Chromium failed to launch from ${CHROMIUM_PATH} (install it: apt-get install -y chromium): ${e.message}`);
    }
    summary.chromium = browser.version();
    const page = await browser.newPage({ viewport: VIEWPORT });
    page.on('console', (msg) => {
      // Warnings are kept too: a CSP refusal is reported as an error, but be strict about both.
      if (msg.type() === 'error' || msg.type() === 'warning') {
        summary.console_errors.push(`${msg.type()}: ${msg.text()}`);
      }
    });
    page.on('pageerror', (e) => summary.page_errors.push(e.message));
    page.on('request', (req) => {
      if (req.url() !== pageUrl) summary.requests.push(req.url());
    });
    await page.goto(pageUrl, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });

    summary.title = await page.title();
    summary.svgs = await page.evaluate(measureSvgs);
    // The page itself must fit the viewport's width: wide tables scroll in their own box.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    summary.page_overflow_px = overflow;

    await page.screenshot({ path: screenshot, fullPage: true, timeout: LOAD_TIMEOUT_MS });
    summary.screenshot = screenshot;

    failures.push(...summary.console_errors.map((m) => `console ${m}`));
    failures.push(...summary.page_errors.map((m) => `page error: ${m}`));
    failures.push(...summary.requests.map((u) => `the page fetched ${u} (it must be self-contained)`));
    if (summary.svgs.length === 0) failures.push('no <svg> in the page');
    for (const s of summary.svgs) {
      const name = `svg #${s.index}${s.caption ? ` (${s.caption})` : ''}`;
      if (s.width <= 0 || s.height <= 0) failures.push(`${name}: empty box ${s.width}x${s.height}`);
      if (s.drawn === 0) failures.push(`${name}: nothing drawn`);
    }
    if (overflow > 0) failures.push(`the page is ${overflow} px wider than a ${VIEWPORT.width} px viewport`);
  } catch (e) {
    failures.push(e.message);
  } finally {
    clearTimeout(overall);
    await cleanup();
  }

  summary.ok = failures.length === 0;
  console.log(JSON.stringify(summary, null, 2));
  if (!summary.ok) {
    for (const f of failures) console.error(`render: FAIL: ${f}`);
    process.exit(1);
  }
  console.error('render: ok');
}

main();
