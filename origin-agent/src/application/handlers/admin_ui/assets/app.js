// The Mobile Access page. Served from the agent binary; no build step, no dependencies.
// Talks only to the admin API of the agent that served it (same origin), with the session
// cookie and, on every request, the session's key (X-CSRF-Token). Builds the DOM with
// createElement/textContent only: names come from phones and are never parsed as HTML.
'use strict';

(() => {
  const POLL_MS = 3000;
  const CODE_POLL_MS = 1500;

  // The session's key. Cookies reach every port of this host, so the cookie alone is not
  // enough: the sign-in page hands this key over once, it lives in this origin's
  // sessionStorage (per scheme, host and port, and per tab), and every API call sends it.
  const KEY_ITEM = 'argus-relay-admin-key';
  const handoff = document.querySelector('meta[name="session-key"]');
  if (handoff) {
    try {
      sessionStorage.setItem(KEY_ITEM, handoff.getAttribute('content') || '');
    } catch (_) {
      // Storage is off: the page will say to sign in again.
    }
    window.location.replace('/admin/ui');
    return;
  }
  let sessionKey = '';
  try {
    sessionKey = sessionStorage.getItem(KEY_ITEM) || '';
  } catch (_) {
    sessionKey = '';
  }

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------------------------------
  // Small helpers

  /** Creates an element: h('p', {class: 'x', text: 'hi'}, child, …). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = String(v);
      else if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'hidden') el.hidden = true;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function nowSecs() {
    return Math.floor(Date.now() / 1000);
  }

  function span(secs) {
    secs = Math.abs(Math.round(secs));
    if (secs < 60) return `${secs} s`;
    if (secs < 3600) return `${Math.floor(secs / 60)} min`;
    if (secs < 86400) return `${Math.floor(secs / 3600)} h`;
    const days = Math.floor(secs / 86400);
    return days === 1 ? '1 day' : `${days} days`;
  }

  /** "just now", "5 min ago", "in 3 min", "never". */
  function relative(unix) {
    if (typeof unix !== 'number' || !isFinite(unix) || unix <= 0) return 'never';
    const diff = nowSecs() - unix;
    if (diff >= 0 && diff < 10) return 'just now';
    return diff > 0 ? `${span(diff)} ago` : `in ${span(diff)}`;
  }

  function dateTime(unix) {
    if (typeof unix !== 'number' || !isFinite(unix) || unix <= 0) return '';
    return new Date(unix * 1000).toLocaleString();
  }

  function clock(secs) {
    secs = Math.max(0, Math.floor(secs));
    return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;
  }

  function str(v, fallback = '') {
    if (v === undefined || v === null) return fallback;
    const s = String(v);
    return s.length > 200 ? `${s.slice(0, 199)}…` : s;
  }

  function joinParts(...parts) {
    return parts.filter((p) => p !== undefined && p !== null && String(p).trim() !== '').join(' · ');
  }

  let toastTimer = 0;
  function toast(text, kind) {
    const el = $('toast');
    el.textContent = text;
    el.className = `toast${kind ? ` toast-${kind}` : ''}`;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
  }

  function banner(text) {
    const el = $('banner');
    if (!text) {
      el.hidden = true;
      el.textContent = '';
      return;
    }
    el.textContent = text;
    el.hidden = false;
  }

  // ------------------------------------------------------------------------------------------
  // The admin API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  let sessionOver = false;

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
    headers['X-CSRF-Token'] = sessionKey;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (_) {
      throw new ApiError(0, 'unreachable', 'The relay is not answering. Is argus-relay still running?');
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      if (resp.status === 401 || (err.reason || '').startsWith('admin_ui.csrf_')) endSession();
      throw new ApiError(resp.status, err.code || `http_${resp.status}`, err.message || `HTTP ${resp.status}`);
    }
    return data;
  }

  function endSession() {
    if (sessionOver) return;
    sessionOver = true;
    document.body.classList.add('signed-out');
    banner('Your session has ended. On the relay computer, run “argus-relay ui” and open the new link.');
    setPill('unknown', 'Signed out');
  }

  function failed(what, e) {
    if (e instanceof ApiError && e.status === 401) return;
    toast(`${what}: ${e.message}`, 'error');
  }

  // ------------------------------------------------------------------------------------------
  // Pairing code + QR

  const pairing = { code: null, deadline: 0, timer: 0, poll: 0, done: false };

  function stopPairing() {
    clearInterval(pairing.timer);
    clearTimeout(pairing.poll);
    pairing.timer = 0;
    pairing.poll = 0;
  }

  function showSvg(container, markup) {
    container.replaceChildren();
    const doc = new DOMParser().parseFromString(markup, 'image/svg+xml');
    const svg = doc.documentElement;
    if (!svg || svg.nodeName.toLowerCase() !== 'svg' || doc.getElementsByTagName('parsererror').length) {
      container.append(h('p', { class: 'muted', text: 'QR code unavailable: type the code instead.' }));
      return;
    }
    // The SVG only draws rectangles and paths; drop anything else, to be safe.
    for (const el of Array.from(svg.querySelectorAll('*'))) {
      if (!['rect', 'path'].includes(el.nodeName.toLowerCase())) el.remove();
    }
    svg.removeAttribute('width');
    svg.removeAttribute('height');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('aria-hidden', 'true');
    container.append(document.importNode(svg, true));
  }

  function groupCode(code) {
    return code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code;
  }

  async function startPairing() {
    const button = $('pair-start');
    button.disabled = true;
    $('pair-new').disabled = true;
    try {
      const scope = $('pair-scope').value === 'owner' ? 'owner' : 'viewer';
      const created = await api('POST', '/admin/ui/pairing-code', { scope });
      stopPairing();
      pairing.code = str(created.code);
      pairing.done = false;
      const ttl = typeof created.expires_in === 'number' ? created.expires_in : 600;
      pairing.deadline = Date.now() + ttl * 1000;
      $('pair-card').hidden = false;
      $('pair-card').dataset.pairUri = typeof created.pair_uri === 'string' ? created.pair_uri : '';
      $('pair-code').textContent = groupCode(pairing.code);
      $('pair-code').dataset.code = pairing.code;
      $('pair-scope-label').textContent = created.scope === 'owner' ? 'Owner access' : 'Viewer access';
      showSvg($('pair-qr'), typeof created.qr_svg === 'string' ? created.qr_svg : '');
      $('pair-qr').hidden = false;
      setPairState('waiting', 'Waiting for the phone…');
      button.textContent = 'Show another code';
      tick();
      pairing.timer = setInterval(tick, 1000);
      pairing.poll = setTimeout(pollCode, CODE_POLL_MS);
    } catch (e) {
      failed('Could not make a pairing code', e);
    } finally {
      button.disabled = false;
      $('pair-new').disabled = false;
    }
  }

  function setPairState(kind, text) {
    const el = $('pair-state');
    el.textContent = text;
    el.className = `pair-state pair-${kind}`;
    $('pair-card').dataset.state = kind;
  }

  function tick() {
    const left = (pairing.deadline - Date.now()) / 1000;
    if (pairing.done) return;
    if (left <= 0) {
      expirePairing();
      return;
    }
    $('pair-countdown').textContent = `Expires in ${clock(left)}`;
  }

  function expirePairing() {
    stopPairing();
    pairing.done = true;
    $('pair-countdown').textContent = 'Expired';
    $('pair-qr').hidden = true;
    setPairState('expired', 'This code has expired. Show a new one to pair a phone.');
  }

  async function pollCode() {
    if (!pairing.code || pairing.done || sessionOver) return;
    const code = pairing.code;
    try {
      const st = await api('GET', `/admin/pairing-codes/${encodeURIComponent(code)}`);
      if (code !== pairing.code) return;
      if (st && st.state === 'redeemed') {
        stopPairing();
        pairing.done = true;
        $('pair-countdown').textContent = 'Used';
        $('pair-qr').hidden = true;
        setPairState('paired', `Paired: ${str(st.device_name, 'a phone')}`);
        toast(`${str(st.device_name, 'A phone')} is paired`, 'ok');
        refreshDevices();
        refreshStatus();
        return;
      }
      if (st && st.state === 'expired') {
        expirePairing();
        return;
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        expirePairing();
        return;
      }
    }
    if (!pairing.done) pairing.poll = setTimeout(pollCode, CODE_POLL_MS);
  }

  // ------------------------------------------------------------------------------------------
  // Phones asking to pair

  const pendingRows = new Map(); // id → {el, when}

  function pendingRow(p) {
    const id = String(p.id);
    const codeInput = h('input', {
      type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '7',
      pattern: '[0-9 ]*', placeholder: '123456', class: 'code-input', 'aria-label': 'Code shown on the phone',
      name: 'code',
    });
    const scope = h('select', { 'aria-label': 'Access', name: 'scope' },
      h('option', { value: 'viewer', text: 'Viewer', selected: true }),
      h('option', { value: 'owner', text: 'Owner' }));
    const confirmBtn = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Confirm' });
    const denyBtn = h('button', { type: 'button', class: 'btn btn-danger-quiet', text: 'Deny' });
    const when = h('span', { class: 'muted small when' });
    const form = h('form', { class: 'decide', autocomplete: 'off' },
      h('label', { class: 'field' }, h('span', { text: 'Code on the phone' }), codeInput),
      h('label', { class: 'field' }, h('span', { text: 'Access' }), scope),
      h('div', { class: 'actions' }, confirmBtn, denyBtn));
    const el = h('li', { class: 'item pending-item', dataset: { pendingId: id } },
      h('div', { class: 'item-head' },
        h('span', { class: 'device-icon', 'aria-hidden': 'true' }),
        h('div', { class: 'item-title' },
          h('strong', { class: 'name', text: str(p.name, 'Phone') }),
          h('span', { class: 'muted small', text: joinParts(str(p.model), str(p.platform)) }),
          when)),
      form);

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const code = codeInput.value.replace(/[\s-]/g, '');
      if (!/^[0-9]{6}$/.test(code)) {
        toast('Type the 6-digit code the phone shows.', 'error');
        codeInput.focus();
        return;
      }
      confirmBtn.disabled = true;
      denyBtn.disabled = true;
      try {
        await api('POST', '/admin/pairings/confirm', { code, scope: scope.value === 'owner' ? 'owner' : 'viewer' });
        toast(`${str(p.name, 'The phone')} may now pair; it finishes on its own.`, 'ok');
        removePending(id);
        refreshPending();
        setTimeout(refreshDevices, 1500);
      } catch (e) {
        if (e instanceof ApiError && e.code === 'invalid_code') {
          toast('That code does not match a phone waiting to pair. Check the code on the phone.', 'error');
        } else {
          failed('Could not confirm', e);
        }
      } finally {
        confirmBtn.disabled = false;
        denyBtn.disabled = false;
      }
    });
    denyBtn.addEventListener('click', async () => {
      confirmBtn.disabled = true;
      denyBtn.disabled = true;
      try {
        await api('POST', '/admin/pairings/deny', { id: Number(p.id) });
        toast(`Denied ${str(p.name, 'the phone')}.`, 'ok');
        removePending(id);
      } catch (e) {
        failed('Could not deny', e);
        refreshPending();
      } finally {
        confirmBtn.disabled = false;
        denyBtn.disabled = false;
      }
    });
    return { el, when, p };
  }

  function removePending(id) {
    const row = pendingRows.get(id);
    if (row) row.el.remove();
    pendingRows.delete(id);
    updatePendingEmpty();
  }

  function updatePendingEmpty() {
    const n = pendingRows.size;
    $('pending-empty').hidden = n > 0;
    const count = $('pending-count');
    count.hidden = n === 0;
    count.textContent = String(n);
  }

  function renderPending(list) {
    const seen = new Set();
    for (const p of list) {
      if (!p || p.id === undefined || p.id === null) continue;
      const id = String(p.id);
      seen.add(id);
      let row = pendingRows.get(id);
      if (!row) {
        row = pendingRow(p);
        pendingRows.set(id, row);
        $('pending-list').append(row.el);
      }
      row.p = p;
      const left = typeof p.expires_at === 'number' ? p.expires_at - nowSecs() : null;
      row.when.textContent = joinParts(`asked ${relative(p.created_at)}`,
        left !== null ? `expires in ${clock(left)}` : null);
    }
    for (const id of Array.from(pendingRows.keys())) {
      if (!seen.has(id)) removePending(id);
    }
    updatePendingEmpty();
  }

  async function refreshPending() {
    try {
      const data = await api('GET', '/admin/pairings/pending');
      renderPending(Array.isArray(data && data.pending) ? data.pending : []);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 0)) failed('Could not load pairing requests', e);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Devices

  const deviceRows = new Map(); // id → {el, key, editing}

  function deviceRow(d) {
    const id = str(d.id);
    const revoked = typeof d.revoked_at === 'number';
    const row = { el: null, key: JSON.stringify(d), editing: false };
    const name = h('strong', { class: 'name', text: str(d.name, 'Unnamed device') });
    const details = joinParts(str(d.model), joinParts(str(d.platform), str(d.os_version)),
      d.app_version ? `app ${str(d.app_version)}` : null);
    const scope = h('span', { class: `badge badge-${d.scope === 'owner' ? 'owner' : 'viewer'}`, text: d.scope === 'owner' ? 'Owner' : 'Viewer' });
    const seen = revoked
      ? `Revoked ${relative(d.revoked_at)}${d.revoked_reason === 'refresh_token_reused' ? ' (its sign-in was copied: a used refresh token came back)' : ''}`
      : `Last seen ${relative(d.last_seen_at)}`;
    const facts = h('p', { class: 'muted small facts-line' },
      h('span', { class: 'last-seen', text: seen }), ' · ',
      h('span', { title: dateTime(d.created_at), text: `paired ${relative(d.created_at)}` }));
    const head = h('div', { class: 'item-head' },
      h('span', { class: 'device-icon', 'aria-hidden': 'true' }),
      h('div', { class: 'item-title' }, h('span', { class: 'title-line' }, name, scope),
        h('span', { class: 'muted small', text: details })));
    const actions = h('div', { class: 'actions' });
    const el = h('li', { class: `item device-item${revoked ? ' is-revoked' : ''}`, dataset: { deviceId: id } }, head, facts, actions);
    row.el = el;
    if (revoked) return row;

    const renameBtn = h('button', { type: 'button', class: 'btn btn-quiet', text: 'Rename' });
    const revokeBtn = h('button', { type: 'button', class: 'btn btn-danger-quiet', text: 'Revoke' });
    actions.append(renameBtn, revokeBtn);

    renameBtn.addEventListener('click', () => {
      row.editing = true;
      const input = h('input', { type: 'text', maxlength: '100', value: str(d.name), 'aria-label': 'New name', name: 'name' });
      const save = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Save' });
      const cancel = h('button', { type: 'button', class: 'btn btn-quiet', text: 'Cancel' });
      const form = h('form', { class: 'rename', autocomplete: 'off' }, input, save, cancel);
      actions.replaceChildren(form);
      input.focus();
      input.select();
      cancel.addEventListener('click', () => {
        row.editing = false;
        replaceDevice(d);
      });
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const newName = input.value.trim();
        if (!newName) {
          toast('A name cannot be empty.', 'error');
          return;
        }
        save.disabled = true;
        try {
          const updated = await api('PUT', `/admin/devices/${encodeURIComponent(id)}/rename`, { name: newName });
          row.editing = false;
          replaceDevice(updated && updated.id ? updated : { ...d, name: newName });
          toast('Renamed.', 'ok');
        } catch (e) {
          save.disabled = false;
          failed('Could not rename', e);
        }
      });
    });

    revokeBtn.addEventListener('click', () => {
      row.editing = true;
      const yes = h('button', { type: 'button', class: 'btn btn-danger', text: 'Revoke now' });
      const no = h('button', { type: 'button', class: 'btn btn-quiet', text: 'Keep' });
      actions.replaceChildren(h('span', { class: 'confirm-text', text: `Revoke ${str(d.name, 'this device')}? It is signed out at once.` }), yes, no);
      no.addEventListener('click', () => {
        row.editing = false;
        replaceDevice(d);
      });
      yes.addEventListener('click', async () => {
        yes.disabled = true;
        try {
          await api('DELETE', `/admin/devices/${encodeURIComponent(id)}`);
          row.editing = false;
          toast(`${str(d.name, 'The device')} is revoked.`, 'ok');
          refreshDevices();
          refreshStatus();
        } catch (e) {
          yes.disabled = false;
          failed('Could not revoke', e);
        }
      });
    });
    return row;
  }

  function replaceDevice(d) {
    const id = str(d.id);
    const old = deviceRows.get(id);
    const row = deviceRow(d);
    deviceRows.set(id, row);
    if (old) old.el.replaceWith(row.el);
  }

  function renderDevices(devices) {
    const active = devices.filter((d) => d && typeof d.revoked_at !== 'number');
    const revoked = devices.filter((d) => d && typeof d.revoked_at === 'number');
    const seen = new Set();
    const place = (list, container) => {
      const els = [];
      for (const d of list) {
        const id = str(d.id);
        seen.add(id);
        let row = deviceRows.get(id);
        const key = JSON.stringify(d);
        if (!row || (!row.editing && row.key !== key)) {
          row = deviceRow(d);
          deviceRows.set(id, row);
        }
        els.push(row.el);
      }
      // Keep the order the agent gives, moving only what moved (editing rows keep focus).
      els.forEach((el, i) => {
        if (container.children[i] !== el) container.insertBefore(el, container.children[i] || null);
      });
      while (container.children.length > els.length) container.lastElementChild.remove();
    };
    place(active, $('devices-list'));
    place(revoked, $('revoked-list'));
    for (const id of Array.from(deviceRows.keys())) if (!seen.has(id)) deviceRows.delete(id);
    $('devices-empty').hidden = active.length > 0;
    $('devices-count').hidden = active.length === 0;
    $('devices-count').textContent = String(active.length);
    $('revoked').hidden = revoked.length === 0;
    $('revoked-count').textContent = String(revoked.length);
  }

  async function refreshDevices() {
    try {
      const data = await api('GET', '/admin/devices');
      renderDevices(Array.isArray(data && data.devices) ? data.devices : []);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 0)) failed('Could not load devices', e);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Relay status: whatever /admin/status returns, read defensively

  function setPill(kind, text) {
    const pill = $('status-pill');
    pill.className = `pill pill-${kind}`;
    pill.textContent = text;
  }

  function humanKey(k) {
    const s = String(k).replace(/_secs?$/, '').replace(/[_-]+/g, ' ').trim();
    return s ? s[0].toUpperCase() + s.slice(1) : String(k);
  }

  function flat(value, depth) {
    if (value === null || value === undefined) return '—';
    if (typeof value === 'boolean') return value ? 'yes' : 'no';
    if (typeof value !== 'object') return str(value);
    if (depth > 1) return '…';
    if (Array.isArray(value)) return value.length ? value.slice(0, 5).map((v) => flat(v, depth + 1)).join(', ') : 'none';
    return Object.entries(value).slice(0, 8).map(([k, v]) => `${humanKey(k)}: ${flat(v, depth + 1)}`).join(' · ') || '—';
  }

  function isErrorKey(k) {
    return /error|fail/i.test(k);
  }

  const TUNNEL_GOOD = /^(up|ok|connected|running|healthy|ready|active)$/i;
  const TUNNEL_BAD = /^(down|error|failed|disconnected|not connected|stopped|unhealthy|dead|exited|reconnecting)$/i;

  function fact(key, label, value, kind) {
    return [h('dt', { text: label }), h('dd', { class: kind ? `fact-${kind}` : undefined, dataset: { key }, text: value })];
  }

  function count(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  function ago(secs) {
    return typeof secs === 'number' && isFinite(secs) ? (secs < 10 ? 'just now' : `${span(secs)} ago`) : null;
  }

  // Fields of /admin/status this page understands; anything else is shown as it comes.
  const KNOWN_STATUS = new Set(['status', 'problems', 'version', 'versions', 'uptime_secs', 'devices',
    'backend', 'edge', 'tunnel', 'keys', 'instance_id']);

  function tunnelFacts(t, rows) {
    if (!t || typeof t !== 'object' || Array.isArray(t)) {
      rows.push(fact('tunnel', 'Tunnel', flat(t, 1)));
      return;
    }
    let state = t.state !== undefined ? t.state : t.status;
    if (state === undefined || state === null) {
      state = t.connected === true ? 'connected' : (t.connected === false ? 'not connected' : '');
    }
    state = str(state);
    const kind = t.connected === true || TUNNEL_GOOD.test(state) ? 'ok'
      : (t.connected === false || TUNNEL_BAD.test(state) ? 'bad' : undefined);
    rows.push(fact('tunnel', 'Tunnel', joinParts(state || '—',
      typeof t.ready_connections === 'number' ? count(t.ready_connections, 'connection', 'connections') : null,
      typeof t.reconnects === 'number' && t.reconnects > 0 ? count(t.reconnects, 'reconnect', 'reconnects') : null,
      typeof t.hostname === 'string' ? t.hostname : null), kind));
    const err = t.last_error;
    if (err && typeof err === 'object' && err.message) {
      rows.push(fact('tunnel_error', 'Last tunnel error', joinParts(str(err.message), ago(err.secs_ago)), 'bad'));
    } else if (typeof err === 'string' && err) {
      rows.push(fact('tunnel_error', 'Last tunnel error', str(err), 'bad'));
    }
  }

  function edgeFacts(e, rows) {
    if (!e || typeof e !== 'object') {
      rows.push(fact('edge', 'Edge (Cloudflare)', flat(e, 1)));
      return;
    }
    const last = ago(e.last_request_secs_ago);
    rows.push(fact('edge', 'Edge (Cloudflare)', joinParts(
      last ? `Last request ${last}` : 'No request from the edge yet',
      typeof e.signed_requests === 'number' ? count(e.signed_requests, 'signed request', 'signed requests') : null),
    last ? 'ok' : undefined));
    const rej = e.rejected;
    const total = typeof rej === 'number' ? rej : (rej && typeof rej.total === 'number' ? rej.total : 0);
    if (total > 0) {
      const l = rej && typeof rej === 'object' ? rej.last : null;
      const lastRej = !l ? null : (typeof l === 'object' && l.reason
        ? joinParts(str(l.reason), ago(l.secs_ago)) : flat(l, 1));
      rows.push(fact('edge_rejected', 'Refused at the tunnel', joinParts(count(total, 'request', 'requests'),
        lastRej ? `last: ${lastRej}` : null), 'bad'));
    }
  }

  function backendFacts(b, rows) {
    if (!b || typeof b !== 'object') {
      rows.push(fact('backend', 'ArgusAI server', flat(b, 1)));
      return;
    }
    const reachable = b.reachable === true;
    rows.push(fact('backend', 'ArgusAI server', reachable
      ? joinParts('Reachable', typeof b.status === 'number' ? `HTTP ${b.status}` : null,
        typeof b.latency_ms === 'number' ? `${b.latency_ms} ms` : null)
      : 'Unreachable', reachable ? 'ok' : 'bad'));
    // The agent's own ArgusAI session (what to run when it is missing or refused).
    const se = b.session;
    if (se && typeof se === 'object') {
      const user = typeof se.username === 'string' ? se.username : null;
      const state = str(se.state);
      const text = {
        active: joinParts(`Signed in as ${user}`, typeof se.access_expires_in_secs === 'number'
          ? `renews itself (token expires in ${span(se.access_expires_in_secs)})` : null),
        starting: `Signed in as ${user}; first renewal in progress`,
        missing: 'Not signed in: run `argus-relay backend login` on the agent',
        refused: joinParts('Refused by ArgusAI: run `argus-relay backend login` on the agent',
          typeof se.problem === 'string' ? se.problem : null),
        expiring: joinParts('Renewal failing', typeof se.problem === 'string' ? se.problem : null),
      }[state] || flat(se, 1);
      const kind = state === 'active' ? 'ok' : (state === 'starting' ? undefined : 'bad');
      rows.push(fact('backend_session', 'ArgusAI session', text, kind));
    }
  }

  function renderStatus(s) {
    const rows = [];
    const overall = str(s.status, 'unknown');
    const ok = /^(ok|healthy|up)$/i.test(overall);
    setPill(ok ? 'ok' : 'warn', ok ? 'Relay OK' : `Relay ${overall}`);
    rows.push(fact('status', 'Overall', ok ? 'OK' : overall.charAt(0).toUpperCase() + overall.slice(1), ok ? 'ok' : 'warn'));

    const problems = Array.isArray(s.problems) ? s.problems.filter((p) => p !== null && p !== undefined && p !== '') : [];
    $('status-problems').replaceChildren(...problems.slice(0, 10).map((p) => h('li', { text: typeof p === 'string' ? str(p) : flat(p, 1) })));
    $('status-problems').hidden = problems.length === 0;

    if (s.tunnel !== undefined) tunnelFacts(s.tunnel, rows);
    if (s.edge !== undefined) edgeFacts(s.edge, rows);
    if (s.backend !== undefined) backendFacts(s.backend, rows);
    if (s.devices !== undefined) {
      const d = s.devices;
      const n = typeof d === 'number' ? d : (d && typeof d.paired === 'number' ? d.paired : null);
      rows.push(fact('devices', 'Paired devices', n !== null ? String(n) : flat(d, 1)));
    }
    const versions = s.versions && typeof s.versions === 'object' ? s.versions : {};
    const agentVersion = s.version !== undefined ? s.version : versions.agent;
    if (agentVersion !== undefined || s.uptime_secs !== undefined) {
      rows.push(fact('agent', 'Agent', joinParts(agentVersion !== undefined ? `version ${str(agentVersion)}` : null,
        typeof s.uptime_secs === 'number' ? `up ${span(s.uptime_secs)}` : null)));
    }
    if (versions.cloudflared) rows.push(fact('cloudflared', 'cloudflared', `version ${str(versions.cloudflared)}`));
    // Anything newer agents report: shown as it is.
    for (const [k, v] of Object.entries(s)) {
      if (KNOWN_STATUS.has(k)) continue;
      rows.push(fact(k, humanKey(k), flat(v, 1), isErrorKey(k) && v ? 'bad' : undefined));
    }
    $('status-list').replaceChildren(...rows.flat());
    $('status-updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  let statusFailed = false;
  async function refreshStatus() {
    try {
      const s = await api('GET', '/admin/status');
      if (statusFailed) banner('');
      statusFailed = false;
      renderStatus(s && typeof s === 'object' ? s : {});
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      statusFailed = true;
      setPill('bad', e.status === 0 ? 'Relay not answering' : 'Status unavailable');
      if (e.status === 0) banner(e.message);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Sign out, polling, start

  async function signOut() {
    try {
      await api('POST', '/admin/ui/logout');
    } catch (_) {
      // Signed out either way.
    }
    sessionOver = true;
    try {
      sessionStorage.removeItem(KEY_ITEM);
    } catch (_) {
      // Nothing stored.
    }
    window.location.replace('/admin/ui');
  }

  let pollTimer = 0;
  async function pollAll() {
    clearTimeout(pollTimer);
    if (sessionOver) return;
    if (!document.hidden) {
      await Promise.all([refreshStatus(), refreshPending(), refreshDevices()]);
    }
    if (!sessionOver) pollTimer = setTimeout(pollAll, POLL_MS);
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('pair-start').addEventListener('click', startPairing);
    $('pair-new').addEventListener('click', startPairing);
    $('sign-out').addEventListener('click', signOut);
    if (!sessionKey) {
      // Signed in in another tab, or storage was cleared: this tab has no key.
      endSession();
      return;
    }
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) pollAll();
    });
    pollAll();
  });
})();
