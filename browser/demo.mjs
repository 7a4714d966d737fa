#!/usr/bin/env node
// Tests push-server's live demo page (`--demo-page`, what `pushbench demo`
// serves) in headless Chromium:
//   - the page loads with no console error and no page error;
//   - each transport panel (short polling, long polling, SSE, WebSocket)
//     receives contiguous ids, before and after every connection is dropped
//     through the admin route with the token typed into the page;
//   - the session heartbeat locks the screen when it stops (push-server
//     paused with SIGSTOP for three intervals) and unlocks when it resumes,
//     and locks when the server says the session expired;
//   - "send a message" raises a Web Notification (permission granted in the
//     browser context).
//
// Usage: node demo.mjs PATH/TO/push-server [SCREENSHOT.png]
// Prints a JSON summary on stdout; exits 0 only if every check passed, 1 with
// one `demo: FAIL ...` line per problem on stderr otherwise. Every wait is
// bounded; push-server and the browser are always killed at the end.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;
const HEARTBEAT_MS = 500;
const TOKEN = 'demo-test-token';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
  '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets',
];

const [bin, screenshot] = process.argv.slice(2);
if (!bin) {
  console.error('usage: node demo.mjs PATH/TO/push-server [SCREENSHOT.png]');
  process.exit(2);
}

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); return ok; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startServer() {
  const args = [
    '--listen', '127.0.0.1:0', '--demo-page', '--admin-token', TOKEN, '--history', '4096', '--retry-ms', '200',
    '--topic-group', 'live:1:20',
    '--topic-group', `status:1:${1000 / HEARTBEAT_MS}:status`,
    '--topic-group', 'inbox:1:0:message',
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = [];
  createInterface({ input: child.stderr }).on('line', (l) => { tail.push(l); if (tail.length > 30) tail.shift(); });
  const ready = new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    child.on('exit', (code, sig) => reject(new Error(`push-server exited early (${code ?? sig}): ${tail.join(' | ')}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      try { const m = JSON.parse(line); if (m.listening) resolve(m.listening); } catch { /* not the ready line */ }
    });
  });
  return { child, ready };
}

/** Waits until `fn()` in the page is truthy, at most STEP_TIMEOUT_MS; false if it never was. */
async function until(page, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: STEP_TIMEOUT_MS, polling: 50 });
    return true;
  } catch {
    return false;
  }
}

const panels = (page) => page.evaluate(() => Object.fromEntries(Object.entries(window.demo.panels).map(
  ([k, p]) => [k, { count: p.count, gaps: p.gaps, missing: p.missing, dups: p.dups, reconnects: p.reconnects,
    first: p.first, last: p.last }])));

function contiguous(snap, when) {
  for (const [k, p] of Object.entries(snap)) {
    check(p.count > 0, `${when}: ${k} received nothing`);
    check(p.gaps === 0 && p.dups === 0, `${when}: ${k} ids not contiguous (${p.missing} missing in ${p.gaps} gaps, ${p.dups} duplicates)`);
    check(p.last - p.first + 1 === p.count, `${when}: ${k} counted ${p.count} events for ids ${p.first}..${p.last}`);
  }
}

async function main() {
  const server = startServer();
  let browser;
  const summary = { ok: false };
  try {
    const addr = await server.ready;
    const url = `http://${addr}/`;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1240, height: 600 } });
    await context.grantPermissions(['notifications'], { origin: `http://${addr}` });
    // Count notifications the page raises, and still raise them.
    await context.addInitScript(() => {
      window.__notifications = [];
      const Real = window.Notification;
      if (!Real) return;
      class Counted extends Real {
        constructor(title, opts) { super(title, opts); window.__notifications.push(title); }
      }
      Object.defineProperty(Counted, 'permission', { get: () => Real.permission });
      Counted.requestPermission = Real.requestPermission.bind(Real);
      window.Notification = Counted;
    });
    const page = await context.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url, { timeout: STEP_TIMEOUT_MS });

    // 1. Every panel receives events, ids contiguous.
    check(await until(page, () => window.demo.ready && Object.values(window.demo.panels).every((p) => p.count >= 25)),
      'every panel received 25 events');
    const before = await panels(page);
    contiguous(before, 'before the drop');
    if (screenshot) await page.screenshot({ path: screenshot });

    // 2. Drop every streaming connection with the typed token; each resumes with nothing lost.
    const errorsBeforeDrop = errors.length;
    await page.fill('#token', TOKEN);
    await page.click('button[data-drop="all"]');
    check(await until(page, () => document.getElementById('admin-result').textContent.startsWith('dropped')),
      'the admin drop answered');
    const dropAnswer = await page.textContent('#admin-result');
    const base = Object.fromEntries(Object.entries(before).map(([k, p]) => [k, p.count]));
    check(await until(page, (b) => Object.entries(window.demo.panels).every(([k, p]) => p.count >= b[k] + 20), base),
      'every panel received 20 more events after the drop');
    const after = await panels(page);
    contiguous(after, 'after the drop');
    // (A long poll is in flight only between events, 20 a second here, so
    // the drop may find none open: it is checked for gaps, not reconnects.)
    for (const k of ['sse', 'ws']) check(after[k].reconnects >= 1, `${k} reconnected after the drop`);

    // 3. The heartbeat stops (server paused): the screen locks; it resumes: it unlocks.
    server.child.kill('SIGSTOP');
    const locked = await until(page, () => window.demo.heartbeat.locked && document.getElementById('lock').classList.contains('on'));
    const lockWhy = await page.evaluate(() => window.demo.heartbeat.why);
    server.child.kill('SIGCONT');
    check(locked, 'the lock overlay appeared when the heartbeat stopped');
    check(await until(page, () => !window.demo.heartbeat.locked && !document.getElementById('lock').classList.contains('on')),
      'the lock overlay cleared when the heartbeat resumed');

    // 4. The server says the session expired: locked until signing in again.
    await page.click('#expire');
    check(await until(page, () => window.demo.heartbeat.locked && window.demo.heartbeat.why.includes('expired')),
      'the lock overlay appeared when the server said the session expired');
    await sleep(3 * HEARTBEAT_MS);
    check(await page.evaluate(() => window.demo.heartbeat.locked), 'an expired session stays locked through heartbeats');
    await page.click('#unlock');
    check(await until(page, () => !window.demo.heartbeat.locked), 'signing in again unlocks');

    // 5. A new message raises a Web Notification.
    await page.click('#send');
    check(await until(page, () => window.demo.inbox.notified >= 1 && window.__notifications.length >= 1),
      'a Web Notification was raised for a new message');

    // 6. Still contiguous after the pause, and no console error all along.
    const end = await panels(page);
    contiguous(end, 'at the end');
    // Chromium logs each connection the drop reset as a console error; any
    // other error, or any error before the drop, is a failure.
    const unexpected = errors.filter((e, i) => i < errorsBeforeDrop || !/net::ERR_CONNECTION_RESET/.test(e));
    check(unexpected.length === 0, `no console errors (got: ${unexpected.join(' | ')})`);
    Object.assign(summary, { url, drop: dropAnswer, lockWhy, panels: end,
      heartbeat: await page.evaluate(() => ({ count: window.demo.heartbeat.count })),
      inbox: await page.evaluate(() => window.demo.inbox), notifications: await page.evaluate(() => window.__notifications) });
  } catch (e) {
    failures.push(String(e && e.stack || e));
  } finally {
    if (browser) await browser.close().catch(() => {});
    server.child.kill('SIGCONT');
    server.child.kill('SIGKILL');
  }
  summary.ok = failures.length === 0;
  summary.failures = failures;
  console.log(JSON.stringify(summary, null, 2));
  for (const f of failures) console.error(`demo: FAIL ${f}`);
  process.exit(summary.ok ? 0 : 1);
}

setTimeout(() => { console.error('demo: FAIL the whole test took longer than its bound'); process.exit(1); }, OVERALL_TIMEOUT_MS).unref();
main();
