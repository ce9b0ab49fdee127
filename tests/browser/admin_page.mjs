// The owner's Mobile Access page in headless Chromium (playwright-core, the system browser).
// Driven by tests/tests/admin_page.rs, which owns the stack and the phone:
//   - this script prints `@@ {"event": …}` lines on stdout when it reaches a step,
//   - the Rust test answers with one JSON command per line on stdin.
// Everything else goes to stderr. Screenshots (phone- and laptop-sized) go to $SCREENSHOT_DIR.
//
// Env: ADMIN_URL (http://127.0.0.1:PORT), LOGIN_URL (a one-time link from `argus-relay ui`),
//      CHROMIUM (executable), SCREENSHOT_DIR.

import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const { ADMIN_URL, LOGIN_URL, CHROMIUM, SCREENSHOT_DIR } = process.env;
for (const [k, v] of Object.entries({ ADMIN_URL, LOGIN_URL, CHROMIUM, SCREENSHOT_DIR })) {
  if (!v) {
    console.error(`admin_page.mjs: ${k} is not set`);
    process.exit(2);
  }
}

const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1280, height: 832 };
const STEP_TIMEOUT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 120_000;

// What an agent with tunnel supervision answers on GET /admin/status (shape from the tunnel work;
// the page must render it without knowing every field).
const RICH_STATUS = {
  status: 'degraded',
  problems: ['the tunnel is not connected (state: reconnecting); last error 12 s ago: cloudflared exited (exit status 1)'],
  instance_id: '9f2c0c6e5a',
  uptime_secs: 3600,
  tunnel: {
    monitoring: 'supervised', state: 'reconnecting', connected: false, ready_connections: 0,
    connector_id: null, state_since: 1764120000, connected_since: null, uptime_secs: null,
    reconnects: 3, restarts: 1,
    last_error: { message: 'cloudflared exited (exit status 1)', at: 1764123588, secs_ago: 12 },
    next_attempt_in_ms: 4000, checked_secs_ago: 1, hostname: 'relay.example.com',
    cloudflared_version: '2024.8.2',
  },
  edge: {
    last_request_at: 1764123505, last_request_secs_ago: 95, signed_requests: 120,
    rejected: { total: 2, by_reason: { 'signature.stale': 2 }, last: { reason: 'signature.stale', secs_ago: 300 } },
  },
  backend: { reachable: true, status: 200, latency_ms: 3 },
  keys: { signing_kid: 'kid-1', verification_kids: ['kid-1'] },
  devices: { paired: 2 },
  versions: { agent: '0.2.0', cloudflared: '2024.8.2' },
  future_field: { level: 3 },
};

// ---- protocol with the Rust test -------------------------------------------------------------

const input = createInterface({ input: process.stdin });
const queued = [];
let waiting = null;
input.on('line', (line) => {
  if (!line.trim()) return;
  if (waiting) {
    const w = waiting;
    waiting = null;
    w(line);
  } else {
    queued.push(line);
  }
});

function nextCommand(expected) {
  return new Promise((resolve, reject) => {
    const take = (line) => {
      clearTimeout(timer);
      let cmd;
      try {
        cmd = JSON.parse(line);
      } catch (e) {
        reject(new Error(`bad command line ${line}: ${e}`));
        return;
      }
      if (cmd.cmd !== expected) reject(new Error(`expected command ${expected}, got ${line}`));
      else resolve(cmd);
    };
    const timer = setTimeout(() => {
      waiting = null;
      reject(new Error(`no ${expected} command within ${COMMAND_TIMEOUT_MS} ms`));
    }, COMMAND_TIMEOUT_MS);
    if (queued.length) take(queued.shift());
    else waiting = take;
  });
}

function emit(event, data = {}) {
  process.stdout.write(`@@ ${JSON.stringify({ event, ...data })}\n`);
}

function log(...args) {
  console.error('[admin_page.mjs]', ...args);
}

function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

// ---- the browser ------------------------------------------------------------------------------

mkdirSync(SCREENSHOT_DIR, { recursive: true });
rmSync(path.join(SCREENSHOT_DIR, 'failure.png'), { force: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({
  viewport: PHONE,
  deviceScaleFactor: 2,
  colorScheme: 'light',
  locale: 'en-US',
  timezoneId: 'UTC',
});
const page = await context.newPage();
page.setDefaultTimeout(STEP_TIMEOUT_MS);

// The page must run without a single CSP violation or script error.
const problems = [];
page.on('console', (msg) => {
  const text = msg.text();
  if (/Content Security Policy|Refused to (load|execute|apply|connect|frame)/i.test(text)) {
    problems.push(`CSP: ${text}`);
  }
});
page.on('pageerror', (err) => problems.push(`page error: ${err}`));

async function shot(name, sizes = ['phone']) {
  for (const size of sizes) {
    await page.setViewportSize(size === 'laptop' ? LAPTOP : PHONE);
    // Let the layout settle at the new width.
    await page.waitForTimeout(150);
    const file = path.join(SCREENSHOT_DIR, `${size}-${name}.png`);
    // caret: 'initial': hiding the caret would inject a <style> the page's CSP (rightly) blocks.
    await page.screenshot({ path: file, fullPage: true, caret: 'initial' });
    log('screenshot', file);
  }
  await page.setViewportSize(PHONE);
}

async function textOf(selector) {
  return ((await page.locator(selector).first().textContent()) || '').trim();
}

async function main() {
  // 1. Without a session: an explanation page, not the page.
  let resp = await page.goto(`${ADMIN_URL}/admin/ui`);
  check(resp.status() === 401, `no session: status ${resp.status()}`);
  check((await textOf('#message-title')) === 'Sign-in needed', 'the explanation says sign-in is needed');
  check((await textOf('#message-command')) === 'argus-relay ui', 'the explanation says how to sign in');
  await shot('01-sign-in-needed');

  // 2. The one-time link signs in: its answer hands the session's key to the script, which keeps
  //    it in this origin's sessionStorage and moves on to a clean address.
  resp = await page.goto(LOGIN_URL);
  check(resp.status() === 200, `sign-in answer: status ${resp.status()}`);
  await page.waitForURL(`${ADMIN_URL}/admin/ui`);
  check(page.url() === `${ADMIN_URL}/admin/ui`, `clean URL after sign-in: ${page.url()}`);
  const cookies = await context.cookies();
  check(!cookies.some((c) => !c.httpOnly || c.sameSite !== 'Strict'),
    'the session cookie is HttpOnly and SameSite=Strict');
  const cookie = cookies.find((c) => c.name === 'argus_relay_admin');
  check(cookie, 'a session cookie');
  await page.locator('#status-list dd[data-key="backend"]', { hasText: 'Reachable' }).waitFor();
  await page.locator('#status-pill', { hasText: 'Relay OK' }).waitFor();
  await page.locator('#devices-empty').waitFor({ state: 'visible' });
  await page.locator('#pending-empty').waitFor({ state: 'visible' });
  const key = await page.evaluate(() => sessionStorage.getItem('argus-relay-admin-key'));
  check(typeof key === 'string' && key.length === 43, 'the session key is in sessionStorage');
  check(!(await page.content()).includes(key), 'the page itself does not carry the key');
  await shot('02-signed-in', ['phone', 'laptop']);

  // Another tab with the same cookie but not the key (as another program given the cookie would
  // be) gets nothing from the admin API and says to sign in.
  const other = await context.newPage();
  await other.goto(`${ADMIN_URL}/admin/ui`);
  await other.locator('#banner', { hasText: 'Your session has ended' }).waitFor();
  const bare = await other.evaluate(() => fetch('/admin/devices').then((r) => r.status));
  check(bare === 403, `the admin API with the cookie alone: ${bare}`);
  await other.close();

  // What issue 20 §4 is about: another service on this computer, on another port, that the
  // owner's browser visits under /admin/ receives the session cookie (cookies ignore ports).
  const seen = [];
  const service = http.createServer((req, res) => {
    seen.push(req.headers.cookie || '');
    res.end('another local service');
  });
  await new Promise((resolve) => service.listen(0, '127.0.0.1', resolve));
  const visit = await context.newPage();
  await visit.goto(`http://127.0.0.1:${service.address().port}/admin/anything`);
  await visit.close();
  await new Promise((resolve) => service.close(resolve));
  const stolen = seen.map((c) => c.split(';').map((p) => p.trim()))
    .flat().find((p) => p.startsWith('argus_relay_admin='));
  check(stolen === `${cookie.name}=${cookie.value}`, `the other service received the cookie: ${seen}`);
  // Replayed by that service with the Origin it likes: nothing, not even a read.
  for (const [method, target] of [['GET', '/admin/devices'], ['GET', '/admin/status'],
    ['POST', '/admin/pairing-codes'], ['POST', '/admin/ui/pairing-code']]) {
    const r = await fetch(`${ADMIN_URL}${target}`, {
      method,
      headers: { cookie: stolen, origin: ADMIN_URL, 'content-type': 'application/json' },
      body: method === 'POST' ? '{"scope":"owner"}' : undefined,
    });
    check(r.status === 403, `${method} ${target} with the stolen cookie: ${r.status}`);
  }
  emit('signed_in', { cookie: stolen, key });

  // 3. A pairing code with its QR code and countdown.
  await page.selectOption('#pair-scope', 'viewer');
  await page.click('#pair-start');
  await page.locator('#pair-qr svg path').waitFor({ state: 'attached' });
  const code = await page.getAttribute('#pair-code', 'data-code');
  check(/^[A-Z0-9]{6}$/.test(code || ''), `a 6-character code: ${code}`);
  check((await textOf('#pair-code')).replace(/\s/g, '') === code, 'the code is shown');
  const countdown = await textOf('#pair-countdown');
  check(/^Expires in (10:00|9:[0-5]\d)$/.test(countdown), `countdown: ${countdown}`);
  const pairUri = await page.getAttribute('#pair-card', 'data-pair-uri');
  check((pairUri || '').startsWith(`argusai://pair?code=${code}&`), `pair URI: ${pairUri}`);
  const box = await page.locator('#pair-qr svg').boundingBox();
  check(box && box.width >= 180 && Math.abs(box.width - box.height) < 2, `QR size ${JSON.stringify(box)}`);
  await shot('03-pairing-code', ['phone', 'laptop']);
  emit('code', { code, pair_uri: pairUri });

  // The phone redeems it (through the Worker); the page notices by itself.
  let cmd = await nextCommand('redeemed');
  await page.locator('#pair-state.pair-paired', { hasText: cmd.name }).waitFor();
  await page.locator('#devices-list .device-item', { hasText: cmd.name }).waitFor();
  await page.locator('#status-list dd[data-key="devices"]', { hasText: '1' }).waitFor();
  await shot('04-paired');
  emit('paired');

  // 4. Phones asking to pair (the iOS app's flow): confirm one, deny the other.
  cmd = await nextCommand('pending');
  const confirmRow = page.locator('#pending-list .pending-item', { hasText: cmd.confirm_name });
  const denyRow = page.locator('#pending-list .pending-item', { hasText: cmd.deny_name });
  await confirmRow.waitFor();
  await denyRow.waitFor();
  check((await textOf('#pending-count')) === '2', 'two requests counted');
  await shot('05-pending', ['phone', 'laptop']);

  // A wrong code confirms nothing and says why.
  await confirmRow.locator('input[name="code"]').fill('000000');
  await confirmRow.getByRole('button', { name: 'Confirm' }).click();
  await page.locator('#toast.toast-error', { hasText: 'does not match' }).waitFor();
  check(await confirmRow.isVisible(), 'still waiting after a wrong code');

  await confirmRow.locator('input[name="code"]').fill(cmd.confirm_code);
  await confirmRow.locator('select[name="scope"]').selectOption('owner');
  await confirmRow.getByRole('button', { name: 'Confirm' }).click();
  await confirmRow.waitFor({ state: 'detached' });
  await denyRow.getByRole('button', { name: 'Deny' }).click();
  await denyRow.waitFor({ state: 'detached' });
  await page.locator('#pending-empty').waitFor({ state: 'visible' });
  emit('decided');

  // 5. The confirmed phone finished pairing: listed, with owner access.
  cmd = await nextCommand('exchanged');
  const ben = page.locator('#devices-list .device-item', { hasText: cmd.name });
  await ben.waitFor();
  check((await ben.locator('.badge').textContent()) === 'Owner', 'the confirmed phone has owner access');
  await page.locator('#devices-count', { hasText: '2' }).waitFor();
  await shot('06-devices', ['phone', 'laptop']);
  emit('listed');

  // 6. Rename, then revoke, a device.
  cmd = await nextCommand('revoke');
  const rowSel = `.device-item[data-device-id="${cmd.device_id}"]`;
  const row = page.locator(`#devices-list ${rowSel}`);
  await row.getByRole('button', { name: 'Rename' }).click();
  await row.locator('input[name="name"]').fill(cmd.rename_to);
  await row.getByRole('button', { name: 'Save' }).click();
  await page.locator(`#devices-list ${rowSel} .name`, { hasText: cmd.rename_to }).waitFor();
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByRole('button', { name: 'Revoke now' }).waitFor();
  await shot('07-revoke-confirm');
  await row.getByRole('button', { name: 'Revoke now' }).click();
  await page.locator(`#revoked-list ${rowSel}`).waitFor({ state: 'attached' });
  check((await page.locator(`#devices-list ${rowSel}`).count()) === 0, 'no longer among the active devices');
  await page.locator('#devices-count', { hasText: '1' }).waitFor();
  emit('revoked');

  // 7. The relay's status changes live: the ArgusAI server goes away.
  cmd = await nextCommand('backend_down');
  await page.locator('#status-list dd[data-key="backend"]', { hasText: 'Unreachable' }).waitFor();
  await page.locator('#status-pill', { hasText: 'degraded' }).waitFor();
  await page.click('#revoked summary');
  await shot('08-status-degraded', ['phone', 'laptop']);

  // Richer status from newer agents (tunnel supervision, problems in plain words): shown, not
  // choked on. Served from a fixture in place of the agent's answer.
  await page.route('**/admin/status', (route) => route.fulfill({
    status: 200,
    contentType: 'application/json',
    body: JSON.stringify(RICH_STATUS),
  }));
  await page.locator('#status-list dd[data-key="tunnel"]', { hasText: 'reconnecting' }).waitFor();
  await page.locator('#status-problems', { hasText: 'cloudflared exited' }).waitFor();
  check((await textOf('#status-list dd[data-key="tunnel_error"]')).includes('cloudflared exited'), 'last tunnel error');
  check((await textOf('#status-list dd[data-key="edge_rejected"]')).startsWith('2 requests'), 'edge refusals');
  check((await textOf('#status-list dd[data-key="devices"]')) === '2', 'devices as {paired}');
  check((await textOf('#status-list dd[data-key="future_field"]')).includes('Level: 3'), 'unknown fields shown');
  await shot('08b-status-tunnel', ['phone', 'laptop']);
  await page.unroute('**/admin/status');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('09-dark', ['phone', 'laptop']);
  await page.emulateMedia({ colorScheme: 'light' });
  emit('status_changed');

  // 8. Signing out ends the session at the agent, not just in the browser.
  await page.click('#sign-out');
  await page.locator('#message-title', { hasText: 'Sign-in needed' }).waitFor();
  const after = await page.evaluate(() => fetch('/admin/devices').then((r) => r.status));
  check(after === 401, `the admin API after sign-out: ${after}`);

  // 9. The link was for one use.
  resp = await page.goto(LOGIN_URL);
  check(resp.status() === 401, `a used link: status ${resp.status()}`);
  check((await textOf('#message-title')) === 'This sign-in link no longer works', 'a used link explains itself');
  await shot('10-link-used');

  check(problems.length === 0, `no CSP violations or script errors:\n${problems.join('\n')}`);
  emit('done');
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  log('FAILED:', e && e.stack ? e.stack : e);
  if (problems.length) log('problems seen:', problems.join('\n'));
  try {
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'failure.png'), fullPage: true, caret: 'initial' });
    log('failure screenshot', path.join(SCREENSHOT_DIR, 'failure.png'));
  } catch (_) {
    // The page may be gone.
  }
  emit('failed', { message: String(e && e.message ? e.message : e) });
} finally {
  input.close();
  await browser.close().catch(() => {});
}
process.exit(failed ? 1 : 0);
