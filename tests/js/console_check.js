// Drives the NA's operator console in headless Chromium (run by tests/e2e_console.sh, which
// starts the NA, nodes, an invite and an agent and passes what it expects in GM_CONSOLE_*).
// Checks the rendered page, revokes a node with the CLI while the page stays open and waits
// for the revocation to appear without a reload, checks that the state endpoint refuses a
// missing or wrong token, and saves a screenshot. Exit 0 on success; any failed check throws.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

const env = (name) => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error('missing environment variable ' + name);
  return v;
};
const url = env('GM_CONSOLE_URL');               // https://host:port/console#token=...
const pin = env('GM_CONSOLE_PIN');               // sha256//<base64 SHA-256 of the NA's public key>
const network = env('GM_CONSOLE_NETWORK');
const nodes = JSON.parse(env('GM_CONSOLE_NODES')); // [node key, ...], all active
const victim = env('GM_CONSOLE_REVOKE_KEY');     // the node key the revoke command revokes
const revokeCmd = JSON.parse(env('GM_CONSOLE_REVOKE_CMD'));
const inviteToken = env('GM_CONSOLE_INVITE_TOKEN');
const inviteRole = env('GM_CONSOLE_INVITE_ROLE');
const agentId = env('GM_CONSOLE_AGENT_ID');
const agentCap = env('GM_CONSOLE_AGENT_CAP');
const naKeyValidTo = env('GM_CONSOLE_NA_VALID_TO');
const renewed = env('GM_CONSOLE_RENEWED_KEY');   // a node key with a renewed certificate
const shot = env('GM_CONSOLE_SCREENSHOT');
const timeoutMs = 1000 * Number(process.env.GM_CONSOLE_TIMEOUT_S || 30);

const origin = new URL(url).origin;
const token = /#token=([0-9a-f]{64})$/.exec(url)[1];

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log('ok: ' + what);
}

async function main() {
  const udd = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'gm-chromium-'));
  // The NA's self-signed certificate is trusted by its key pin, the one nodes use: Chromium
  // accepts a certificate whose public key hashes to a listed SPKI hash, and only that one.
  const spki = pin.replace(/^sha256\/\//, '');
  const ctx = await chromium.launchPersistentContext(udd, {
    executablePath: process.env.GM_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors-spki-list=' + spki],
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    const problems = [];
    const requests = [];
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
    page.on('request', (r) => requests.push(r.url()));

    const resp = await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
    check(resp.status() === 200, 'GET /console answers 200 over ' + new URL(url).protocol);
    const h = resp.headers();
    check(/default-src 'self'/.test(h['content-security-policy'] || '') && !/unsafe-inline/.test(h['content-security-policy']),
      'the page has a strict Content-Security-Policy (' + h['content-security-policy'] + ')');
    check(h['x-content-type-options'] === 'nosniff', 'X-Content-Type-Options: nosniff');
    check(h['referrer-policy'] === 'no-referrer', 'Referrer-Policy: no-referrer');

    await page.waitForFunction((n) => document.getElementById('network-name').textContent === n, network, { timeout: timeoutMs });
    check(true, 'the network name ' + network + ' is shown');
    check(!page.url().includes('token='), 'the token is dropped from the address bar (' + page.url() + ')');

    for (const k of nodes) {
      await page.waitForSelector(`#nodes tr[data-node-key="${k}"][data-state="active"]`, { timeout: timeoutMs });
    }
    check(true, 'every enrolled node is listed as active (' + nodes.length + ')');
    const expiry = await page.textContent(`#nodes tr[data-node-key="${nodes[0]}"] td:nth-child(5)`);
    check(/^in \d/.test(expiry), 'a node shows the time to its certificate expiry (' + expiry + ')');

    const renewedStates = await page.$$eval(`#nodes tr[data-node-key="${renewed}"] details tr`, (rows) => rows.map((r) => r.getAttribute('data-state')));
    check(JSON.stringify(renewedStates) === '["superseded","active"]', 'a renewed node shows its old certificate superseded (' + renewedStates + ')');

    await page.waitForSelector('#invites tbody tr', { timeout: timeoutMs });
    const inviteText = await page.textContent('#invites tbody');
    check(inviteText.includes(inviteRole), 'the outstanding invite is listed with its role');
    const html = await page.content();
    check(!html.includes(inviteToken), 'the invite token is nowhere in the page');

    await page.waitForSelector(`#agents tr[data-agent-id="${agentId}"]`, { timeout: timeoutMs });
    const agentRow = await page.textContent(`#agents tr[data-agent-id="${agentId}"]`);
    check(agentRow.includes(agentCap) && /in \d/.test(agentRow), 'the agent is listed with its capability and registration expiry');

    const keyExpiry = await page.textContent('#na-key-expiry');
    const keyWindow = await page.textContent('#na-key-window');
    check(/^in (8\d|9\d) d/.test(keyExpiry) && keyWindow.includes(naKeyValidTo),
      'the NA key expiry is shown (' + keyExpiry + ', ' + keyWindow + ')');
    // The issuance log: one "issue" entry per enrolled node at least, the renewal, the root.
    const logKinds = await page.$$eval('#log tbody tr', (rows) => rows.map((r) => r.getAttribute('data-kind')));
    check(logKinds.filter((k) => k === 'issue').length >= nodes.length && logKinds.includes('renew'),
      'the issuance log lists the issued and renewed certificates (' + logKinds.join(',') + ')');
    const logFacts = await page.textContent('#log-facts');
    check(/Entries\s*\d+/.test(logFacts) && /[0-9a-f]{64}/.test(logFacts), 'the log shows its size and root hash');
    const logBefore = await page.locator('#log tbody tr').count();
    const seqBefore = Number(await page.textContent('#crl-sequence'));
    check(await page.locator('#crl-history li').count() >= 1, 'the CRL history lists the published sequences');

    // The state endpoint, from the page's origin: no token, a wrong token, the right one.
    // (Chromium reports each refused fetch as a console error: those three are expected.)
    const before = problems.length;
    const probe = await page.evaluate(async (t) => {
      const get = async (auth) => {
        const r = await fetch('/console/api/state', { headers: auth ? { Authorization: auth } : {}, cache: 'no-store' });
        return { status: r.status, body: await r.text(), cache: r.headers.get('Cache-Control'), etag: r.headers.get('ETag') };
      };
      const wrong = t.slice(0, 63) + (t[63] === '0' ? '1' : '0');
      const ok = await get('Bearer ' + t);
      const again = await fetch('/console/api/state', { headers: { Authorization: 'Bearer ' + t, 'If-None-Match': ok.etag }, cache: 'no-store' });
      return { none: await get(null), wrong: await get('Bearer ' + wrong), short: await get('Bearer abc'), ok, again: again.status };
    }, token);
    const refused = problems.splice(before).filter((m) => !/status of 401/.test(m));
    problems.push(...refused);
    check(probe.none.status === 401 && probe.none.body.includes('console_token_required'), 'no token: 401');
    check(probe.wrong.status === 401 && probe.wrong.body.includes('console_token_invalid'), 'a wrong token: 401');
    check(probe.short.status === 401, 'a short token: 401');
    check(probe.ok.status === 200 && probe.ok.cache === 'no-store', 'the right token: 200, Cache-Control no-store');
    check(probe.again === 304, 'the same state again with If-None-Match: 304');
    check(!probe.ok.body.includes(inviteToken), 'the invite token is not in the state');
    check(!/"token"|private|secret/i.test(probe.ok.body), 'the state holds no token field or private material');

    // Revoke while the page stays open: it must show without a reload, and the certificate
    // list the operator opened stays open across the new rendering.
    await page.click(`#nodes tr[data-node-key="${renewed}"] details summary`);
    await page.evaluate(() => { window.__gmNoReload = 1; });
    execFileSync(revokeCmd[0], revokeCmd.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
    await page.waitForSelector(`#nodes tr[data-node-key="${victim}"][data-state="revoked"]`, { timeout: timeoutMs });
    check(await page.evaluate(() => window.__gmNoReload === 1), 'the revocation appeared without a reload');
    check(await page.locator(`#nodes tr[data-node-key="${renewed}"] details[open]`).count() === 1,
      'an opened certificate list stays open when the state changes');
    await page.waitForFunction((s) => Number(document.getElementById('crl-sequence').textContent) > s, seqBefore, { timeout: timeoutMs });
    await page.waitForSelector('#log tbody tr[data-kind="revoke"]', { timeout: timeoutMs });
    check(await page.locator('#log tbody tr').count() >= Math.min(logBefore + 1, 50), 'the revocation was appended to the log on the page');
    const crlText = await page.textContent('#crl tbody');
    check(crlText.includes('key_compromise'), 'the CRL lists the revocation with its reason');
    const others = nodes.filter((k) => k !== victim);
    for (const k of others) check(await page.locator(`#nodes tr[data-node-key="${k}"][data-state="active"]`).count() === 1, 'node ' + k.slice(0, 8) + ' stays active');

    const foreign = requests.filter((r) => !r.startsWith(origin + '/'));
    check(foreign.length === 0, 'every request stayed on the NA (' + (foreign.join(', ') || 'none elsewhere') + ')');
    check(problems.length === 0, 'no script error or blocked resource (' + problems.join('; ') + ')');

    await page.screenshot({ path: shot, fullPage: true });
    check(fs.statSync(shot).size > 10000, 'screenshot saved to ' + shot);
  } finally {
    await ctx.close();
    fs.rmSync(udd, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error('FAIL: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
