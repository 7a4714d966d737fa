#!/usr/bin/env node
// Browser clients for a pushbench run (`--browser-clients N`): N headless
// Chromium pages, each one client of one transport using the browser's own
// API — a `fetch` short-polling loop, a `fetch` long-polling loop,
// `EventSource`, or `WebSocket` — against the server at BASE_URL.
//
// Every page records, per event, its id, its scheduled emission time
// (`emitted_at_us`, from the event) and when the page received it
// (`performance.timeOrigin + performance.now()`, µs); the harness keeps the
// events of its measured window, verifies them (every id once, in order)
// and builds the latency histogram, exactly as for the fleet's clients.
//
// Usage: node clients.mjs '{"base_url":…,"transport":"sse","clients":N,
//          "topics":T,"poll_interval_ms":…,"longpoll_timeout_ms":…}'
// Protocol on stdout, one JSON object per line:
//   {"ready":true,"pages":N}           every page connected (got its first answer)
//   {"clients":[{topic,events:[[id,emitted_us,received_us],…],reconnects,errors:[…]}],
//    "console_errors":[…]}             after "stop" arrives on stdin (or stdin closes)
// Failures: one {"error":"…"} line and exit 1. Every wait is bounded.

import http from 'node:http';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';

const READY_TIMEOUT_MS = 30_000;
const COLLECT_TIMEOUT_MS = 15_000;
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
  '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets',
  // Background pages must not have their timers throttled: every page is a foreground tab here.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (e) => { say({ error: String(e && e.message || e) }); process.exit(1); };

let cfg;
try {
  cfg = JSON.parse(process.argv[2] || '');
} catch {
  fail('usage: node clients.mjs \'{"base_url":…,"transport":…,"clients":N,…}\'');
}

// The client loop, run inside each page (serialised into it).
function client(c) {
  const st = { events: [], reconnects: 0, errors: [], ready: false, last: null };
  window.__pb = st;
  const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
  const take = (ev) => {
    st.events.push([ev.id, ev.emitted_at_us, nowUs()]);
    st.last = ev.id;
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const q = (extra) => `topic=${c.topic}${st.last === null ? '' : `&after=${st.last}`}${extra}`;
  const note = (e) => { if (st.errors.length < 20) st.errors.push(String(e)); };
  if (c.transport === 'short-poll' || c.transport === 'long-poll') {
    const long = c.transport === 'long-poll';
    (async () => {
      // Short polls keep a fixed schedule, offset by this client's phase.
      let next = performance.now() + c.phase_ms;
      if (!long) await sleep(c.phase_ms);
      for (;;) {
        try {
          const path = long ? `/longpoll?${q(`&timeout_ms=${c.longpoll_timeout_ms}`)}` : `/poll?${q('')}`;
          const body = await (await fetch(c.base_url + path)).json();
          if (st.last === null && !body.events.length) st.last = body.next;
          for (const ev of body.events) take(ev);
          st.ready = true;
        } catch (e) {
          note(e);
          st.reconnects += 1;
          if (long) await sleep(200);
        }
        if (!long) {
          next += c.poll_interval_ms;
          await sleep(Math.max(0, next - performance.now()));
        }
      }
    })();
  } else if (c.transport === 'sse') {
    const es = new EventSource(`${c.base_url}/sse?topic=${c.topic}`);
    let opened = false;
    es.onopen = () => { st.ready = true; if (opened) st.reconnects += 1; opened = true; };
    es.onerror = (e) => note('EventSource error, readyState ' + es.readyState);
    const onEvent = (m) => take(JSON.parse(m.data));
    es.onmessage = onEvent;
    if (c.event_type) es.addEventListener(c.event_type, onEvent);
  } else if (c.transport === 'ws') {
    const open = () => {
      const url = c.base_url.replace(/^http/, 'ws') + `/ws?${q('')}`;
      const ws = new WebSocket(url);
      ws.onopen = () => { st.ready = true; };
      ws.onmessage = (m) => take(JSON.parse(m.data));
      ws.onclose = () => { st.reconnects += 1; setTimeout(open, 200); };
    };
    open();
  } else {
    note('unknown transport ' + c.transport);
  }
}

async function main() {
  // A real http origin for the pages (CORS is open on push-server's routes).
  const origin = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><meta charset="utf-8"><title>pushbench browser client</title>');
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  const pageUrl = `http://127.0.0.1:${origin.address().port}/`;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const stopAll = async () => { await browser.close().catch(() => {}); origin.close(); };
  try {
    const pages = [];
    const consoleErrors = [];
    for (let i = 0; i < cfg.clients; i++) {
      // A context per page: each page is one user's browser, with its own
      // connection pool (one context's pages would share HTTP/1.1's six
      // connections per host, and a seventh EventSource would wait).
      const context = await browser.newContext();
      const page = await context.newPage();
      page.on('console', (m) => { if (m.type() === 'error' && consoleErrors.length < 50) consoleErrors.push(m.text()); });
      page.on('pageerror', (e) => { if (consoleErrors.length < 50) consoleErrors.push(String(e)); });
      await page.goto(pageUrl);
      const c = {
        base_url: cfg.base_url.replace(/\/$/, ''),
        transport: cfg.transport,
        topic: `t${(cfg.first_topic || 0) + (i % Math.max(1, cfg.topics))}`,
        poll_interval_ms: cfg.poll_interval_ms,
        phase_ms: (cfg.poll_interval_ms * i) / cfg.clients,
        longpoll_timeout_ms: cfg.longpoll_timeout_ms,
        event_type: cfg.event_type || null,
      };
      await page.evaluate(`(${client.toString()})(${JSON.stringify(c)})`);
      pages.push({ page, topic: c.topic });
    }
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const { page } of pages) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the browser clients did not connect within ${READY_TIMEOUT_MS} ms`);
      await page.waitForFunction(() => window.__pb.ready, null, { timeout: left, polling: 20 });
    }
    say({ ready: true, pages: pages.length });
    // Run until told to stop.
    await new Promise((resolve) => {
      const rl = createInterface({ input: process.stdin });
      rl.on('line', (l) => { if (l.trim() === 'stop') resolve(); });
      rl.on('close', resolve);
    });
    const collect = Promise.all(pages.map(async ({ page, topic }) => {
      const st = await page.evaluate(() => ({ events: window.__pb.events, reconnects: window.__pb.reconnects,
        errors: window.__pb.errors }));
      return { topic, ...st };
    }));
    const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error('collecting the pages\' records timed out')), COLLECT_TIMEOUT_MS));
    const clients = await Promise.race([collect, timeout]);
    say({ clients, console_errors: consoleErrors });
  } finally {
    await stopAll();
  }
}

main().then(() => process.exit(0), fail);
