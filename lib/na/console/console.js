// The operator console: polls GET /console/api/state with the console token (from the URL
// fragment #token=..., kept in this tab's sessionStorage) and If-None-Match, and renders it.
// Everything the NA sends is put in the page as text (textContent), never as HTML.
'use strict';

(function () {
  const POLL_MS = 1000;
  const STORE_KEY = 'gm-console-token';
  let token = null;
  let etag = null;
  let state = null;
  let skewMs = 0;           // NA clock minus ours, from the Date header
  let lastOk = 0;
  let seenRevoked = null;   // certificate ids revoked at the previous render
  let timer = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'title') e.title = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  function nowNa() { return Date.now() + skewMs; }

  function fmtDuration(s) {
    const a = Math.abs(s);
    if (a < 60) return Math.floor(a) + ' s';
    if (a < 3600) return Math.floor(a / 60) + ' min ' + Math.floor(a % 60) + ' s';
    if (a < 86400) return Math.floor(a / 3600) + ' h ' + Math.floor((a % 3600) / 60) + ' min';
    return Math.floor(a / 86400) + ' d ' + Math.floor((a % 86400) / 3600) + ' h';
  }

  // "in 3 d 4 h" / "2 min ago", marked when close or past; data-at keeps the timestamp so
  // the text is refreshed every second without a new state.
  function rel(iso, warnBelowS) {
    const span = el('span', { class: 'rel', 'data-at': iso || '', 'data-warn': String(warnBelowS || 0), title: iso || '' });
    fillRel(span);
    return span;
  }

  function fillRel(span) {
    const iso = span.getAttribute('data-at');
    if (!iso) { span.textContent = '-'; return; }
    const d = (Date.parse(iso) - nowNa()) / 1000;
    const warn = Number(span.getAttribute('data-warn'));
    span.textContent = d >= 0 ? 'in ' + fmtDuration(d) : fmtDuration(d) + ' ago';
    span.classList.toggle('past', warn > 0 && d < 0);
    span.classList.toggle('soon', warn > 0 && d >= 0 && d < warn);
  }

  function short(key) { return key && key.length > 16 ? key.slice(0, 10) + '…' + key.slice(-4) : key; }
  function keyCell(key) { return el('td', { class: 'mono', title: key || '' }, key ? short(key) : '-'); }
  function badge(s) { return el('span', { class: 'badge ' + s }, s); }
  function chips(list) { const d = el('span', { class: 'chips' }); for (const x of list || []) d.append(el('span', {}, x)); return d; }

  function fill(tbody, rows) { tbody.replaceChildren(...rows); }

  function facts(dl, pairs) {
    dl.replaceChildren();
    for (const [k, v, id] of pairs) {
      const dd = el('dd', id ? { id } : {}, v);
      dl.append(el('dt', {}, k), dd);
    }
  }

  function render(s) {
    const revokedNow = new Set();
    const net = s.network;
    $('network-name').textContent = net.name;
    document.title = net.name + ' · genesis-mesh console';
    const keyLeft = (Date.parse(net.na_key_valid_to) - nowNa()) / 1000;
    $('na-key-expiry').replaceChildren(rel(net.na_key_valid_to, 14 * 86400));
    $('na-key-tile').className = 'tile' + (keyLeft < 0 ? ' bad' : keyLeft < 14 * 86400 ? ' warn' : '');
    facts($('network-facts'), [
      ['Network', net.name],
      ['NA address', net.na_url + (net.tls ? ' (HTTPS)' : ' (plain HTTP)')],
      ['NA public key', el('span', { class: 'mono' }, net.na_public_key)],
      ['NA key window', el('span', {}, net.na_key_valid_from + ' → ' + net.na_key_valid_to + ' (',
        rel(net.na_key_valid_to, 14 * 86400), ')'), 'na-key-window'],
      ['Genesis hash', el('span', { class: 'mono' }, net.genesis_hash)],
      ['Root key', el('span', { class: 'mono' }, (net.genesis && net.genesis.root_public_key) || '-')],
      ['NA version', net.version],
    ]);

    let active = 0, revoked = 0;
    const nodeRows = [];
    // A new state replaces the rows: the certificate lists the operator opened stay open.
    const open = new Set(Array.from(document.querySelectorAll('#nodes details[open]'),
      (d) => d.closest('tr[data-node-key]').getAttribute('data-node-key')));
    for (const n of s.nodes) {
      if (n.state === 'active') active++;
      const certRows = n.certificates.map((c) => {
        if (c.state === 'revoked') { revoked++; revokedNow.add(c.cert_id); }
        return el('tr', { 'data-cert-id': c.cert_id, 'data-state': c.state },
          el('td', { class: 'mono' }, c.cert_id), el('td', {}, badge(c.state)),
          el('td', {}, c.reason || ''), el('td', {}, rel(c.expires_at, 86400)));
      });
      const details = el('details', {}, el('summary', {}, n.certificates.length + ' certificate' + (n.certificates.length === 1 ? '' : 's')),
        el('table', {}, el('tbody', {}, ...certRows)));
      details.open = open.has(n.node_public_key);
      const stateCell = el('td', {}, badge(n.state));
      if (n.key_blocked) stateCell.append(' ', badge('blocked'));
      const tr = el('tr', { 'data-node-key': n.node_public_key, 'data-state': n.state },
        keyCell(n.node_public_key), el('td', {}, chips(n.roles)), stateCell,
        el('td', { class: 'mono' }, short(n.cert_id)),
        el('td', {}, n.state === 'revoked' ? '-' : rel(n.expires_at, 86400)), el('td', {}, details));
      if (seenRevoked && n.state === 'revoked' && !seenRevoked.has(n.cert_id)) tr.className = 'flash';
      nodeRows.push(tr);
    }
    fill($('nodes').tBodies[0], nodeRows);
    $('nodes-empty').hidden = nodeRows.length > 0;
    $('nodes-note').textContent = s.nodes_truncated ? '(only the first certificates are listed)' : '';
    $('count-active').textContent = active;
    $('count-revoked').textContent = revoked;

    const crl = s.crl;
    $('crl-sequence').textContent = crl.sequence;
    facts($('crl-facts'), [
      ['Sequence', String(crl.sequence)],
      ['Issued', el('span', {}, (crl.issued_at || '-') + ' (', rel(crl.issued_at), ')')],
      ['Next update', el('span', {}, (crl.next_update || '-') + ' (', rel(crl.next_update, 3600), ')')],
    ]);
    fill($('crl').tBodies[0], crl.entries.map((e) => el('tr', { 'data-cert-id': e.certificate_id },
      el('td', { class: 'mono' }, e.certificate_id), keyCell(e.node_public_key),
      el('td', {}, badge('revoked'), ' ', e.reason), el('td', {}, e.revoked_at))));
    $('crl-empty').hidden = crl.entries.length > 0;
    $('crl-history').replaceChildren(...crl.history.map((h) =>
      el('li', { title: h.published_at }, '#' + h.sequence + ' · ' + h.published_at)));

    const log = s.log;
    facts($('log-facts'), [
      ['Entries', String(log.tree_size)],
      ['Root hash', el('span', { class: 'mono' }, log.root_hash)],
    ]);
    fill($('log').tBodies[0], log.entries.map((e) => el('tr', { 'data-index': String(e.index), 'data-kind': e.kind || 'damaged' },
      el('td', {}, String(e.index)), el('td', {}, e.intact ? badge(e.kind) : badge('damaged')),
      el('td', { class: 'mono' }, e.cert_id || '-'), keyCell(e.node_public_key),
      el('td', {}, e.time ? rel(e.time) : '-'))));
    $('log-empty').hidden = log.entries.length > 0;

    fill($('invites').tBodies[0], s.invites.map((i) => el('tr', { 'data-invite-id': i.id },
      el('td', { class: 'mono' }, i.id), el('td', {}, chips(i.roles)), el('td', {}, rel(i.created_at)),
      el('td', {}, rel(i.expires_at, 3600)), el('td', {}, i.max_validity_hours + ' h'))));
    $('invites-empty').hidden = s.invites.length > 0;
    $('count-invites').textContent = s.invites.length;

    fill($('agents').tBodies[0], s.agents.map((a) => el('tr', { 'data-agent-id': a.agent_id, 'data-node-state': a.node_state },
      el('td', {}, a.agent_id), el('td', {}, chips(a.capabilities)), keyCell(a.node_public_key),
      el('td', {}, badge(a.node_state)), el('td', {}, rel(a.registered_at)), el('td', {}, rel(a.expires_at, 60)))));
    $('agents-empty').hidden = s.agents.length > 0;
    $('count-agents').textContent = s.agents.length;

    seenRevoked = revokedNow;
  }

  function setStatus(kind, text) {
    const st = $('status');
    st.className = 'status ' + kind;
    st.textContent = text;
  }

  function showLogin(message) {
    $('content').hidden = true;
    $('login').hidden = false;
    $('login-error').hidden = !message;
    $('login-error').textContent = message || '';
    setStatus('error', message ? 'not authorized' : 'no token');
  }

  async function poll() {
    timer = null;
    try {
      const headers = { Authorization: 'Bearer ' + token };
      if (etag) headers['If-None-Match'] = etag;
      const r = await fetch('/console/api/state', { headers, cache: 'no-store', credentials: 'omit' });
      const date = r.headers.get('Date');
      if (date) skewMs = Date.parse(date) + 500 - Date.now();
      if (r.status === 401) {
        sessionStorage.removeItem(STORE_KEY);
        token = null;
        let msg = 'The NA refused the console token.';
        try { msg = (await r.json()).error.message; } catch (e) { /* keep the generic text */ }
        showLogin(msg);
        return;
      }
      if (r.status === 200) {
        etag = r.headers.get('ETag');
        state = await r.json();
        render(state);
        $('login').hidden = true;
        $('content').hidden = false;
      } else if (r.status !== 304) {
        throw new Error('the NA answered ' + r.status);
      }
      lastOk = Date.now();
      setStatus('live', 'live · updated ' + new Date(nowNa()).toISOString().slice(11, 19) + ' UTC');
    } catch (e) {
      setStatus('error', 'NA unreachable (' + e.message + ')' + (lastOk ? ', last update ' + fmtDuration((Date.now() - lastOk) / 1000) + ' ago' : ''));
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function start(t) {
    token = t;
    etag = null;
    sessionStorage.setItem(STORE_KEY, t);
    if (timer) clearTimeout(timer);
    poll();
  }

  function tick() {
    if (state) for (const span of document.querySelectorAll('span.rel')) fillRel(span);
  }

  document.addEventListener('DOMContentLoaded', () => {
    // The token travels in the fragment, which browsers never send; drop it from the address bar.
    const m = /(?:^#|&)token=([0-9a-f]{64})(?:&|$)/.exec(location.hash);
    if (m) history.replaceState(null, '', location.pathname + location.search);
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('login-token').value.trim();
      $('login-token').value = '';
      if (/^[0-9a-f]{64}$/.test(t)) start(t);
      else showLogin('A console token is 64 lowercase hex characters.');
    });
    setInterval(tick, 1000);
    const t = m ? m[1] : sessionStorage.getItem(STORE_KEY);
    if (t) start(t);
    else showLogin(null);
  });
})();
