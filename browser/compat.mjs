#!/usr/bin/env node
// Checks that push-server works with clients that are not ours:
//   (a) headless Chromium: a real `EventSource` on /sse and a real `WebSocket` on /ws;
//   (b) Node: the npm `eventsource` package and the npm `ws` package.
//
// The server is started with `--stream-max-age 1500ms`, so during the ~5 s of
// collection every stream is ended by the server several times. EventSource must
// resume on its own (Last-Event-ID); WebSocket has no built-in resume, so the
// client reconnects with `after=<last id>` (the application-level resume a
// WebSocket app needs). Either way the ids a client sees must be contiguous: no
// gap, no duplicate, no reordering.
//
// A second phase starts a fresh push-server with an admin token and no stream
// age limit, and resets every open connection abruptly (`POST /admin/drop`,
// no close frame, no end of stream) twice mid-stream: the same clients must
// resume the same way and miss nothing.
//
// Usage: node compat.mjs PATH/TO/push-server
// Prints a JSON summary on stdout; exits 0 only if every check passed, 1 with
// one `compat: FAIL ...` line per problem on stderr otherwise (Chromium failing
// to launch is a failure, never a skip). Every wait is bounded; push-server and
// the browser are always killed at the end.

import { spawn } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';

import { EventSource as NodeEventSource } from 'eventsource';
import { chromium } from 'playwright-core';
import NodeWebSocket from 'ws';

const OVERALL_TIMEOUT_MS = 45_000;
const SERVER_START_TIMEOUT_MS = 10_000;
const BROWSER_LAUNCH_TIMEOUT_MS = 15_000;
const COLLECT_MS = 5_000;
const RATE = 20; // events/s
const STREAM_MAX_AGE_MS = 1_500;
const RETRY_MS = 200;
// 5 s with a stream ending every 1.5 s (+ 0.2 s retry) gives 2–3 reconnects.
const MIN_RECONNECTS = 2;
// At 20/s for 5 s a client should see ~100 events; half of that still proves
// delivery while leaving room for a slow connect on a loaded CI machine.
const MIN_EVENTS = Math.floor((RATE * COLLECT_MS) / 1000 / 2);
// Latency sanity bounds (same machine, same clock): a negative latency beyond
// clock resolution means the stamp is not the scheduled time; seconds of latency
// at 20 events/s means events are held back.
const MIN_LATENCY_MS = -5;
const MAX_LATENCY_MS = 3_000;
// Phase 2: abrupt drops of every connection at these offsets into the collection.
const DROP_AT_MS = [1_500, 3_200];
const ADMIN_TIMEOUT_MS = 2_000;
const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // The page (one 127.0.0.1 port) talks to push-server (another port): newer
  // Chromium would otherwise ask for the local-network-access permission.
  '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets',
];

/**
 * Runs one EventSource and one WebSocket subscriber for `durationMs` and
 * returns what each saw. It is used unchanged in the browser (its source is
 * injected into the page, with the browser's own EventSource/WebSocket) and in
 * Node (with the npm packages), so both environments are checked by the same
 * code. It must therefore be self-contained: no references outside its body.
 */
async function runClients({ sseUrl, wsUrl, durationMs, EventSourceImpl, WebSocketImpl }) {
  const nowMs = () => performance.timeOrigin + performance.now();
  const newStats = () => ({
    opens: 0,
    errors: 0,
    closes: [],
    ids: [],
    latenciesMs: [],
    problems: [],
  });
  let stopped = false;
  // Records one received message; returns its id or null if it is malformed.
  const record = (stats, data, lastEventId) => {
    const receivedMs = nowMs();
    // Messages already in flight when the clients were closed are not counted.
    if (stopped) return null;
    if (typeof data !== 'string') {
      stats.problems.push(`non-text message (${Object.prototype.toString.call(data)})`);
      return null;
    }
    let ev;
    try {
      ev = JSON.parse(data);
    } catch {
      stats.problems.push(`message is not JSON: ${data.slice(0, 80)}`);
      return null;
    }
    if (!Number.isSafeInteger(ev.id) || ev.topic !== 't0' || !Number.isSafeInteger(ev.emitted_at_us) || typeof ev.data !== 'string') {
      stats.problems.push(`message is not an Event: ${data.slice(0, 120)}`);
      return null;
    }
    if (lastEventId !== undefined && lastEventId !== String(ev.id)) {
      stats.problems.push(`lastEventId ${JSON.stringify(lastEventId)} != event id ${ev.id}`);
    }
    stats.ids.push(ev.id);
    stats.latenciesMs.push(receivedMs - ev.emitted_at_us / 1000);
    return ev.id;
  };

  const sse = newStats();
  const ws = newStats();

  // EventSource reconnects by itself, sending Last-Event-ID.
  const es = new EventSourceImpl(sseUrl);
  es.onopen = () => {
    sse.opens += 1;
  };
  es.onerror = () => {
    sse.errors += 1;
    // readyState CLOSED (2) after an error means the client gave up for good
    // (bad status or content type, CORS refusal): it will never reconnect.
    if (!stopped && es.readyState === 2) sse.problems.push('EventSource closed for good after an error (status, content type or CORS?)');
  };
  es.onmessage = (e) => {
    if (e.type !== 'message') sse.problems.push(`unexpected event type ${e.type}`);
    record(sse, e.data, e.lastEventId);
  };

  // WebSocket has no resume of its own: reconnect with after=<last id>.
  let lastWsId = null;
  let socket = null;
  const connectWs = () => {
    const url = lastWsId === null ? wsUrl : `${wsUrl}&after=${lastWsId}`;
    socket = new WebSocketImpl(url);
    socket.onopen = () => {
      ws.opens += 1;
    };
    socket.onerror = () => {
      ws.errors += 1;
    };
    socket.onmessage = (e) => {
      const id = record(ws, e.data, undefined);
      if (id !== null) lastWsId = id;
    };
    socket.onclose = (e) => {
      if (stopped) return;
      ws.closes.push({ code: e.code, clean: e.wasClean });
      // A short pause, like EventSource's retry, so a server that refuses
      // connections is not hammered in a tight loop.
      setTimeout(() => {
        if (!stopped) connectWs();
      }, 50);
    };
  };
  connectWs();

  await new Promise((resolve) => setTimeout(resolve, durationMs));
  stopped = true;
  es.close();
  socket.close();

  const finish = ({ latenciesMs, ...s }) => {
    const lat = latenciesMs.slice().sort((a, b) => a - b);
    const latency_ms =
      lat.length === 0 ? null : { min: lat[0], p50: lat[Math.floor(lat.length / 2)], max: lat[lat.length - 1] };
    return { ...s, latency_ms };
  };
  return { sse: finish(sse), ws: finish(ws) };
}

/** Checks one client's record; returns a list of failure messages. */
function check(label, stats, { expectCleanCloses, minReconnects = MIN_RECONNECTS, why = `server ends streams every ${STREAM_MAX_AGE_MS} ms` }) {
  const fails = stats.problems.map((p) => `${label}: ${p}`);
  const reconnects = stats.opens - 1;
  if (stats.opens === 0) return [...fails, `${label}: never connected (errors: ${stats.errors})`];
  if (reconnects < minReconnects) {
    fails.push(`${label}: ${reconnects} reconnect(s), expected >= ${minReconnects} (${why})`);
  }
  if (stats.ids.length < MIN_EVENTS) fails.push(`${label}: only ${stats.ids.length} events, expected >= ${MIN_EVENTS}`);
  for (let i = 1; i < stats.ids.length; i++) {
    const [prev, id] = [stats.ids[i - 1], stats.ids[i]];
    if (id !== prev + 1) {
      const what = id <= prev ? 'duplicate or reordered' : `gap of ${id - prev - 1}`;
      fails.push(`${label}: id ${id} after ${prev} (${what})`);
      if (fails.length > 20) break;
    }
  }
  const lat = stats.latency_ms;
  if (lat && (lat.min < MIN_LATENCY_MS || lat.max > MAX_LATENCY_MS)) {
    fails.push(`${label}: latency ${lat.min.toFixed(1)}..${lat.max.toFixed(1)} ms outside ${MIN_LATENCY_MS}..${MAX_LATENCY_MS} ms`);
  }
  if (expectCleanCloses) {
    const unclean = stats.closes.filter((c) => !c.clean || c.code === 1006);
    if (unclean.length > 0) fails.push(`${label}: server ended ${unclean.length} connection(s) without a close frame: ${JSON.stringify(unclean)}`);
  }
  return fails;
}

function summarize(stats) {
  const { ids, ...rest } = stats;
  return {
    ...rest,
    reconnects: stats.opens - 1,
    events: ids.length,
    first_id: ids[0] ?? null,
    last_id: ids[ids.length - 1] ?? null,
  };
}

/** Rejects after `ms` with a message naming what was waited for. */
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `POST /admin/drop?fraction=1` (bounded); resolves with the connections reset. */
function adminDropAll(addr, token) {
  const req = new Promise((resolve, reject) => {
    const r = http.request(
      `http://${addr}/admin/drop?fraction=1`,
      { method: 'POST', headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`POST /admin/drop: status ${res.statusCode}: ${body.slice(0, 200)}`));
          try {
            resolve(JSON.parse(body).dropped);
          } catch {
            reject(new Error(`POST /admin/drop: not JSON: ${body.slice(0, 200)}`));
          }
        });
      },
    );
    r.on('error', reject);
    r.end();
  });
  return within(ADMIN_TIMEOUT_MS, 'POST /admin/drop', req);
}

/** Starts push-server and resolves with its address once it printed it. */
function startServer(bin, tail, extraArgs) {
  const args = [
    '--listen', '127.0.0.1:0',
    '--rate', String(RATE),
    '--topics', '1',
    '--payload-bytes', '64',
    '--retry-ms', String(RETRY_MS),
    ...extraArgs,
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Keep the last lines of output for the failure message; draining both
  // pipes also keeps a chatty server from blocking on a full pipe.
  const keep = (line) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  createInterface({ input: child.stderr }).on('line', keep);
  const stdout = createInterface({ input: child.stdout });
  const ready = new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    child.on('exit', (code, signal) => reject(new Error(`push-server exited early (code ${code}, signal ${signal})`)));
    stdout.on('line', (line) => {
      keep(line);
      try {
        const msg = JSON.parse(line);
        if (typeof msg.listening === 'string') resolve(msg.listening);
      } catch {
        // not the ready line
      }
    });
  });
  return { child, ready: within(SERVER_START_TIMEOUT_MS, 'push-server to print {"listening":...}', ready) };
}

/** Serves the test page (a real http origin, unlike about:blank). */
async function startPageServer() {
  const html = `<!doctype html><meta charset="utf-8"><title>pushbench compat</title>
<script>window.runClients = ${runClients.toString()};</script>`;
  const server = http.createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await within(5_000, 'the page server to listen', new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  }));
  return server;
}

async function main() {
  const bin = process.argv[2];
  if (!bin) {
    console.error('usage: node compat.mjs PATH/TO/push-server');
    process.exit(2);
  }

  const serverTail = [];
  let server = null;
  let dropServer = null;
  let pageServer = null;
  let browser = null;
  const cleanup = async () => {
    // Each step bounded and independent: one failing must not leave the others running.
    if (browser) await within(5_000, 'the browser to close', browser.close()).catch(() => {});
    if (pageServer) pageServer.close();
    for (const s of [server, dropServer]) {
      if (s && s.exitCode === null && s.signalCode === null) {
        s.kill('SIGTERM');
        const exited = new Promise((resolve) => s.once('exit', resolve));
        await within(2_000, 'push-server to exit', exited).catch(() => s.kill('SIGKILL'));
      }
    }
  };
  // Backstop for any path that exits without cleanup (an uncaught error, a signal).
  process.on('exit', () => {
    for (const s of [server, dropServer]) if (s && s.exitCode === null) s.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      console.error(`compat: FAIL: interrupted by ${sig}`);
      cleanup().finally(() => process.exit(1));
    });
  }

  const summary = { ok: false, rate: RATE, stream_max_age_ms: STREAM_MAX_AGE_MS, collect_ms: COLLECT_MS };
  const failures = [];
  const overall = setTimeout(() => {
    console.error(`compat: FAIL: overall timeout of ${OVERALL_TIMEOUT_MS} ms`);
    if (serverTail.length) console.error(`push-server output (last lines):\n${serverTail.join('\n')}`);
    cleanup().finally(() => process.exit(1));
  }, OVERALL_TIMEOUT_MS);

  try {
    const started = startServer(bin, serverTail, ['--stream-max-age', `${STREAM_MAX_AGE_MS}ms`]);
    server = started.child;
    const addr = await started.ready;
    summary.server = addr;
    const sseUrl = `http://${addr}/sse?topic=t0`;
    const wsUrl = `ws://${addr}/ws?topic=t0`;

    pageServer = await startPageServer();
    const pageUrl = `http://127.0.0.1:${pageServer.address().port}/`;
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
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(pageUrl, { timeout: 5_000 });

    // Browser and Node clients run at the same time: ~5 s instead of ~10 s.
    const args = { sseUrl, wsUrl, durationMs: COLLECT_MS };
    const [inBrowser, inNode] = await within(
      COLLECT_MS + 10_000,
      'the clients to finish',
      Promise.all([
        page.evaluate(
          (a) => window.runClients({ ...a, EventSourceImpl: EventSource, WebSocketImpl: WebSocket }),
          args,
        ),
        runClients({ ...args, EventSourceImpl: NodeEventSource, WebSocketImpl: NodeWebSocket }),
      ]),
    );
    failures.push(...pageErrors.map((m) => `chromium: page error: ${m}`));
    failures.push(...check('chromium EventSource', inBrowser.sse, { expectCleanCloses: false }));
    failures.push(...check('chromium WebSocket', inBrowser.ws, { expectCleanCloses: true }));
    failures.push(...check('node eventsource', inNode.sse, { expectCleanCloses: false }));
    failures.push(...check('node ws', inNode.ws, { expectCleanCloses: true }));
    summary.clients = {
      chromium_eventsource: summarize(inBrowser.sse),
      chromium_websocket: summarize(inBrowser.ws),
      node_eventsource: summarize(inNode.sse),
      node_ws: summarize(inNode.ws),
    };

    // Phase 2: abrupt resets by the admin route on a server without a stream age limit.
    const pageErrorsBefore = pageErrors.length;
    const token = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
    const second = startServer(bin, serverTail, ['--admin-token', token]);
    dropServer = second.child;
    const dropAddr = await second.ready;
    summary.drop_server = dropAddr;
    const dropArgs = {
      sseUrl: `http://${dropAddr}/sse?topic=t0`,
      wsUrl: `ws://${dropAddr}/ws?topic=t0`,
      durationMs: COLLECT_MS,
    };
    const drops = DROP_AT_MS.map(
      (ms) => new Promise((resolve) => setTimeout(resolve, ms)).then(() => adminDropAll(dropAddr, token)),
    );
    const [dropBrowser, dropNode, ...dropped] = await within(
      COLLECT_MS + 10_000,
      'the clients of the drop phase to finish',
      Promise.all([
        page.evaluate(
          (a) => window.runClients({ ...a, EventSourceImpl: EventSource, WebSocketImpl: WebSocket }),
          dropArgs,
        ),
        runClients({ ...dropArgs, EventSourceImpl: NodeEventSource, WebSocketImpl: NodeWebSocket }),
        ...drops,
      ]),
    );
    summary.drops = dropped;
    dropped.forEach((n, i) => {
      // Four clients were streaming (a reconnect may be mid-flight at the instant of a drop).
      if (!(n >= 2)) failures.push(`admin drop #${i + 1} at ${DROP_AT_MS[i]} ms reset ${n} connection(s), expected >= 2`);
    });
    failures.push(...pageErrors.slice(pageErrorsBefore).map((m) => `chromium (drop phase): page error: ${m}`));
    const dropCheck = { expectCleanCloses: false, minReconnects: 1, why: `the server reset every connection at ${DROP_AT_MS.join(' and ')} ms` };
    failures.push(...check('chromium EventSource after drops', dropBrowser.sse, dropCheck));
    failures.push(...check('chromium WebSocket after drops', dropBrowser.ws, dropCheck));
    failures.push(...check('node eventsource after drops', dropNode.sse, dropCheck));
    failures.push(...check('node ws after drops', dropNode.ws, dropCheck));
    summary.clients_after_drops = {
      chromium_eventsource: summarize(dropBrowser.sse),
      chromium_websocket: summarize(dropBrowser.ws),
      node_eventsource: summarize(dropNode.sse),
      node_ws: summarize(dropNode.ws),
    };
  } catch (e) {
    failures.push(e.message);
  } finally {
    clearTimeout(overall);
    await cleanup();
  }

  summary.ok = failures.length === 0;
  summary.failures = failures;
  console.log(JSON.stringify(summary, null, 2));
  if (!summary.ok) {
    for (const f of failures) console.error(`compat: FAIL: ${f}`);
    if (serverTail.length) console.error(`push-server output (last lines):\n${serverTail.join('\n')}`);
    process.exit(1);
  }
  console.error('compat: ok');
}

main();
