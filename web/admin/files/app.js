// The mqim admin console: hash-routed pages over the public REST API
// (docs/admin.md). No framework; every value from the server is put in
// the page as text, never as HTML.

import { ApiError, call, enc, qs, session } from './api.js';

const $ = (sel, root = document) => root.querySelector(sel);

// h builds an element: h('a', {href: '#/x', class: 'y'}, 'text', child).
// on* attributes are listeners; null and false children are skipped.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : '');
const fmtNum = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');
const words = (s) => s.split(/[\s,]+/).map((w) => w.trim()).filter(Boolean);
const mediaNames = ['text', 'image', 'audio', 'video'];

function fmtUptime(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), mm = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hh}h ${mm}m`;
  if (hh) return `${hh}h ${mm}m`;
  return `${mm}m ${s % 60}s`;
}

// ---------------------------------------------------------------- banners

function showError(e) {
  const el = $('#error');
  el.textContent = e instanceof ApiError ? e.toString() : String(e && e.message ? e.message : e);
  el.hidden = false;
  $('#notice').hidden = true;
}

function showNotice(text) {
  const el = $('#notice');
  el.textContent = text;
  el.hidden = false;
  $('#error').hidden = true;
}

function clearBanners() {
  $('#error').hidden = true;
  $('#notice').hidden = true;
}

// api is call() with the console's error handling: a 401 means the key is
// no longer good (changed on the server): back to the login page.
async function api(method, path, body) {
  try {
    return await call(method, path, body);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      session.clear();
      loginError = e.toString();
      route();
    }
    throw e;
  }
}

// action runs fn, showing its error; it returns whether fn succeeded.
async function action(fn) {
  try {
    await fn();
    return true;
  } catch (e) {
    showError(e);
    return false;
  }
}

// confirmDialog asks in a modal dialog and resolves to the answer. It
// listens to the buttons (and Escape), not to the dialog's close event: the
// close event of the previous prompt is queued after the dialog is closed
// and could answer a prompt opened right after it.
function confirmDialog(text) {
  const dlg = $('#confirm');
  $('#confirm-text').textContent = text;
  return new Promise((resolve) => {
    const finish = (ok) => {
      $('#confirm-ok').onclick = $('#confirm-cancel').onclick = dlg.oncancel = null;
      resolve(ok);
    };
    $('#confirm-ok').onclick = () => finish(true);
    $('#confirm-cancel').onclick = () => finish(false);
    dlg.oncancel = () => finish(false); // Escape
    dlg.showModal();
  });
}

// ---------------------------------------------------------------- routing

let loginError = '';
let cleanup = null; // stops the current page's timers
let routeGen = 0; // counts renders

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

// go opens a page; notice, if any, is shown once the page is there (the
// hashchange that a new hash causes clears the banners of the old page).
let pendingNotice = '';
function go(hash, notice = '') {
  if (location.hash === hash) {
    route().then(() => notice && showNotice(notice));
    return;
  }
  pendingNotice = notice;
  location.hash = hash;
}

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const creds = session.get();
  $('#login-view').hidden = !!creds;
  $('#shell').hidden = !creds;
  if (!creds) {
    renderLogin();
    return;
  }
  $('#nav-app').textContent = `app ${creds.app}`;
  const { parts, params } = parseHash();
  const [page = 'dashboard', id] = parts;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === page);
  }
  // Each render fills its own element: a slower render of a page left
  // meanwhile fills a detached one, and never mixes into this page.
  const gen = ++routeGen;
  const view = h('div');
  $('#page').replaceChildren(view);
  const pages = {
    dashboard: () => dashboard(view),
    users: () => (id ? userDetail(view, id) : userList(view, params)),
    groups: () => (id ? listDetail(view, kinds.group, id) : listIndex(view, kinds.group, params)),
    rooms: () => (id ? listDetail(view, kinds.room, id) : listIndex(view, kinds.room, params)),
    history: () => historyPage(view, params),
    broadcast: () => broadcastPage(view, params),
  };
  const render = pages[page];
  document.body.dataset.route = ''; // rendering
  try {
    if (render) await render();
    else view.append(h('h1', {}, 'Not found'), h('p', {}, 'No page at this address.'));
  } catch (e) {
    if (gen === routeGen) showError(e);
  }
  // The address of the page now shown (the browser tests wait for it).
  if (gen === routeGen) document.body.dataset.route = location.hash;
}

window.addEventListener('hashchange', async () => {
  clearBanners();
  const notice = pendingNotice;
  pendingNotice = '';
  await route();
  if (notice && $('#error').hidden) showNotice(notice);
});

// ---------------------------------------------------------------- login

function renderLogin() {
  const err = $('#login-error');
  err.textContent = loginError;
  err.hidden = !loginError;
  $('#app-id').focus();
}

$('#login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const app = $('#app-id').value.trim();
  const master = $('#master-key').value.trim();
  const btn = $('#login-btn');
  btn.disabled = true;
  try {
    // X-ML-MasterKey is checked on every route: a wrong key is 401 here.
    await call('GET', '/ctx?_limit=1', undefined, { app, master });
    session.set(app, master);
    loginError = '';
    $('#master-key').value = '';
    if (!location.hash || location.hash === '#/login') location.hash = '#/dashboard';
    route();
  } catch (e) {
    loginError = e instanceof ApiError ? e.toString() : String(e);
    renderLogin();
  } finally {
    btn.disabled = false;
  }
});

$('#logout').addEventListener('click', () => {
  session.clear();
  loginError = '';
  clearBanners();
  location.hash = '#/login';
  route();
});

// ---------------------------------------------------------------- dashboard

// dashboard polls GET /stats every 2 s: the server's own counters.
async function dashboard(view) {
  const card = (id, label) => h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, '–'));
  const spark = h('svg', {});
  const grid = h('div', { class: 'stats', id: 'stats' },
    card('stat-mqtt', 'MQTT connections'),
    card('stat-socketio', 'socket.io connections'),
    card('stat-online', 'users online'),
    card('stat-rate', 'messages / s'),
    card('stat-says', 'messages accepted'),
    card('stat-refused', 'messages refused'),
    card('stat-deliveries', 'deliveries'),
    card('stat-http', 'HTTP requests'));
  const unavailable = h('div', { id: 'stats-unavailable', class: 'banner warn', hidden: true });
  const meta = h('p', { class: 'muted', id: 'stats-meta' });
  const chart = h('div', { class: 'card' }, h('h2', {}, 'Messages per second'), h('div', { id: 'sparkline' }, spark),
    h('p', { class: 'muted' }, 'Accepted messages per second, from the change of the server\'s counter between two polls (every 2 s, last 2 minutes).'));
  view.append(h('h1', {}, 'Dashboard'), unavailable, grid, chart, meta);

  const samples = []; // {t: uptime_s, says, rate}
  let stopped = false;
  let timer = null;
  const set = (id, v) => { $(`#${id}`).textContent = v; };

  async function poll() {
    try {
      const s = await call('GET', '/stats');
      unavailable.hidden = true;
      grid.classList.remove('off');
      set('stat-mqtt', fmtNum(s.connections?.mqtt));
      set('stat-socketio', fmtNum(s.connections?.socketio));
      set('stat-online', fmtNum(s.users_online));
      set('stat-says', fmtNum(s.messages?.says));
      set('stat-refused', fmtNum(s.messages?.refused));
      set('stat-deliveries', fmtNum(s.messages?.deliveries));
      set('stat-http', fmtNum(s.http_requests));
      const prev = samples[samples.length - 1];
      let rate = null;
      if (prev && s.uptime_s > prev.t) rate = (s.messages.says - prev.says) / (s.uptime_s - prev.t);
      samples.push({ t: s.uptime_s, says: s.messages.says, rate });
      if (samples.length > 61) samples.shift();
      set('stat-rate', rate === null ? '…' : rate.toFixed(1));
      meta.textContent = `mqim ${s.version} · up ${fmtUptime(s.uptime_s)} (since ${fmtTime(s.started_at)}) · updated ${new Date().toLocaleTimeString()}`;
      drawSparkline($('#sparkline'), samples.map((x) => x.rate).filter((r) => r !== null));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        session.clear();
        loginError = e.toString();
        route();
        return;
      }
      unavailable.hidden = false;
      unavailable.textContent = e instanceof ApiError && e.status === 404
        ? 'Counters unavailable: this server does not answer GET /stats.'
        : `Counters unavailable: ${e instanceof ApiError ? e.toString() : e}`;
      grid.classList.add('off');
    }
    if (!stopped) timer = setTimeout(poll, 2000);
  }
  cleanup = () => {
    stopped = true;
    clearTimeout(timer);
  };
  await poll();
}

// drawSparkline draws values as an inline SVG polyline, scaled to the
// largest value.
function drawSparkline(box, values) {
  const W = 600, H = 80;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  const maxV = Math.max(1, ...values);
  const n = Math.max(values.length - 1, 1);
  const pts = values.map((v, i) => `${((i / n) * W).toFixed(1)},${(H - 4 - (v / maxV) * (H - 12)).toFixed(1)}`);
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', pts.join(' '));
  svg.append(line);
  box.replaceChildren(h('div', { class: 'muted small' }, `peak ${maxV.toFixed(1)}/s`), svg);
}

// ---------------------------------------------------------------- users

const pageSize = 20;

// parseFilter reads "city=shanghai age=30" into search parameters; text
// without "=" is one plain term: a name, or a user id.
function parseFilter(text) {
  const filters = {};
  text = text.trim();
  if (!text.includes('=')) return { filters, plain: text };
  for (const w of words(text.replaceAll('&', ' '))) {
    const i = w.indexOf('=');
    if (i > 0) filters[w.slice(0, i)] = w.slice(i + 1);
  }
  return { filters, plain: '' };
}

const idPattern = /^[A-Za-z0-9_-]{1,128}$/;

// pager moves through search results pageSize at a time; shown is the
// number of rows on this page, full whether the search filled the page.
function pager(params, shown, full, hashFor) {
  const skip = Number(params.get('skip')) || 0;
  return h('div', { class: 'row pager' },
    h('button', { class: 'secondary', id: 'prev', disabled: skip === 0, onclick: () => go(hashFor(Math.max(0, skip - pageSize))) }, '‹ Previous'),
    h('span', { class: 'muted' }, shown ? `${skip + 1}–${skip + shown}` : 'none'),
    h('button', { class: 'secondary', id: 'next', disabled: !full, onclick: () => go(hashFor(skip + pageSize)) }, 'Next ›'));
}

async function userList(view, params) {
  const q = params.get('q') || '';
  const skip = Number(params.get('skip')) || 0;
  const input = h('input', { id: 'user-search', type: 'search', value: q, placeholder: 'user id, name, or attribute=value …' });
  const form = h('form', { class: 'row', onsubmit: (ev) => { ev.preventDefault(); go(`#/users${qs({ q: input.value.trim() })}`); } },
    input, h('button', { id: 'user-search-btn', type: 'submit' }, 'Search'));
  view.append(h('h1', {}, 'Users'),
    h('p', { class: 'muted' }, 'Text without "=" is a name or an exact user id; attribute=value pairs filter on attributes (all must match). Empty lists every user.'),
    form);

  const { filters, plain } = parseFilter(q);
  const found = new Map();
  if (idPattern.test(plain) && skip === 0) {
    // An exact id first, then users of that name.
    try {
      const d = await api('GET', `/ctx/${enc(plain)}`);
      found.set(plain, { id: plain, online: d.sessions > 0, ts: d.ts, attributes: d.attributes });
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
  }
  const search = { ...filters, _sort: 'id', _skip: skip, _limit: pageSize };
  if (plain) search.name = plain;
  const hits = await api('GET', `/ctx${qs(search)}`);
  for (const u of hits) if (!found.has(u.id)) found.set(u.id, u);
  const rows = [...found.values()];
  view.append(table(['id', 'name', 'online', 'updated'], rows.map((u) => [
    h('a', { href: `#/users/${enc(u.id)}`, class: 'uid' }, u.id),
    u.attributes?.name ?? '',
    onlineBadge(u.online),
    fmtTime(u.ts),
  ]), 'users', 'No user matches.'));
  view.append(pager(params, rows.length, hits.length === pageSize, (s) => `#/users${qs({ q, skip: s })}`));
}

function onlineBadge(online, sessions) {
  return h('span', { class: `badge ${online ? 'on' : 'off'}` }, online ? (sessions ? `online · ${sessions}` : 'online') : 'offline');
}

function table(headers, rows, id, empty) {
  if (!rows.length) return h('p', { class: 'empty', id: id && `${id}-empty` }, empty);
  return h('table', { id },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

function recentText(r) {
  if (!r) return '';
  const c = r.content || {};
  const body = (c.media || 0) === 0 ? c.body : `[${mediaNames[c.media] || 'media'}] ${c.body}`;
  return `${r.speaker}: ${body}`;
}

async function userDetail(view, uid) {
  const base = `/ctx/${enc(uid)}`;
  const [d, friends, groups, rooms, convs] = await Promise.all([
    api('GET', base),
    api('GET', `${base}/friends?detail`),
    api('GET', `${base}/groups?detail`),
    api('GET', `${base}/rooms?detail`),
    api('GET', `${base}/conversations?limit=50`),
  ]);
  const reload = () => route();

  const kick = h('button', { id: 'kick', class: 'secondary', onclick: async () => {
    if (!(await confirmDialog(`End every session of ${uid}? Its clients may log in again.`))) return;
    await action(async () => {
      const r = await api('POST', `${base}/kick`);
      await reload();
      showNotice(`Kicked ${uid}: ${r.kicked} session(s) ended.`);
    });
  } }, 'Kick');
  const banFor = h('select', { id: 'ban-for' },
    h('option', { value: '3600000' }, '1 hour'),
    h('option', { value: '86400000' }, '1 day'),
    h('option', { value: '604800000' }, '7 days'),
    h('option', { value: '0' }, 'for ever'));
  const banReason = h('input', { id: 'ban-reason', placeholder: 'reason' });
  const ban = h('button', { id: 'ban', class: 'danger', onclick: async () => {
    const ms = Number(banFor.value);
    if (!(await confirmDialog(`Ban ${uid} ${ms ? `for ${banFor.selectedOptions[0].textContent}` : 'for ever'}? Its sessions end and its logins are refused.`))) return;
    await action(async () => {
      await api('PUT', `${base}/ban`, { until: ms ? Date.now() + ms : 0, reason: banReason.value });
      await reload();
      showNotice(`Banned ${uid}.`);
    });
  } }, 'Ban');
  const unban = h('button', { id: 'unban', class: 'secondary', onclick: async () => {
    await action(async () => {
      await api('DELETE', `${base}/ban`);
      await reload();
      showNotice(`Lifted the ban on ${uid}.`);
    });
  } }, 'Lift ban');
  const withHistory = h('input', { type: 'checkbox', id: 'erase-history' });
  const erase = h('button', { id: 'erase', class: 'danger', onclick: async () => {
    if (!(await confirmDialog(`Erase ${uid}${withHistory.checked ? ' and its friend and stranger history' : ''}? This cannot be undone.`))) return;
    await action(async () => {
      await api('DELETE', `${base}${withHistory.checked ? '?history=true' : ''}`);
      go('#/users', `Erased ${uid}.`);
    });
  } }, 'Erase');

  const online = d.sessions > 0;
  view.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/users' }, 'Users'), ' / '),
    h('h1', {}, h('span', { id: 'user-id' }, uid), ' ', h('span', { id: 'user-online' }, onlineBadge(online, d.sessions)),
      d.banned ? h('span', { class: 'badge ban', id: 'user-banned' }, `banned ${d.banned.until ? `until ${fmtTime(d.banned.until)}` : 'for ever'}${d.banned.reason ? ` · ${d.banned.reason}` : ''}`) : null),
    h('p', { class: 'muted' }, `Live sessions: `, h('b', { id: 'user-sessions' }, String(d.sessions)),
      ` · installs: ${d.installs.length ? d.installs.join(', ') : 'none'} · last change ${fmtTime(d.ts)}`),
    h('div', { class: 'card actions' },
      h('div', { class: 'row' }, kick, h('span', { class: 'sep' }), banFor, banReason, d.banned ? unban : ban,
        h('span', { class: 'sep' }), h('label', { class: 'inline' }, withHistory, ' with history'), erase),
      h('p', { class: 'muted' }, 'Kick ends the sessions; a ban also refuses logins until it ends; erase removes the user (docs/maxim.md §2.5, §2.8).')),
    h('div', { class: 'cols' },
      h('div', { class: 'card' }, h('h2', {}, `Friends (${friends.length})`),
        table(['friend', 'online', 'latest', ''], friends.map((f) => [
          h('a', { href: `#/users/${enc(f.id)}` }, f.id), onlineBadge(f.online), recentText(f.recent),
          h('a', { href: `#/history${qs({ kind: 'friend', a: uid, b: f.id })}` }, 'history'),
        ]), 'friends', 'No friends.')),
      h('div', { class: 'card' }, h('h2', {}, `Groups (${groups.length})`),
        table(['group', 'owner', 'members', ''], groups.map((g) => [
          h('a', { href: `#/groups/${enc(g.id)}` }, g.attributes?.name || g.id), g.owner, String(g.members.length),
          h('a', { href: `#/history${qs({ kind: 'group', a: g.id })}` }, 'history'),
        ]), 'user-groups', 'No groups.'),
        h('h2', {}, `Rooms (${rooms.length})`),
        table(['room', 'members'], rooms.map((r) => [
          h('a', { href: `#/rooms/${enc(r.id)}` }, r.attributes?.name || r.id), String(r.members.length),
        ]), 'user-rooms', 'No rooms.'))),
    h('div', { class: 'card' }, h('h2', {}, 'Conversations'),
      table(['kind', 'with', 'messages', 'unread', 'latest', ''], convs.map((c) => [
        c.kind, c.id, String(c.seq), String(c.unread), c.last ? recentText(c.last) : '',
        historyLink(uid, c) ? h('a', { href: historyLink(uid, c) }, 'history') : '',
      ]), 'conversations', 'No conversations.')),
    attributesEditor(`${base}/attributes`, d.attributes));
}

function historyLink(uid, c) {
  switch (c.kind) {
    case 'friend': return `#/history${qs({ kind: 'friend', a: uid, b: c.id })}`;
    case 'stranger': return `#/history${qs({ kind: 'stranger', a: uid, b: c.id })}`;
    case 'group': return `#/history${qs({ kind: 'group', a: c.id })}`;
    case 'passenger': return `#/history${qs({ kind: 'passenger', a: c.id, b: uid })}`;
    default: return '';
  }
}

// attributesEditor edits an attributes object as JSON (PUT replaces it).
function attributesEditor(path, attrs) {
  const area = h('textarea', { id: 'attributes', rows: 6, spellcheck: 'false' });
  area.value = JSON.stringify(attrs || {}, null, 2);
  return h('div', { class: 'card' }, h('h2', {}, 'Attributes'), area,
    h('div', { class: 'row' }, h('button', { id: 'attributes-save', class: 'secondary', onclick: async () => {
      let v;
      try {
        v = JSON.parse(area.value);
      } catch (e) {
        showError(`Attributes are not JSON: ${e.message}`);
        return;
      }
      if (await action(() => api('PUT', path, v))) showNotice('Attributes saved.');
    } }, 'Save attributes')));
}

// ---------------------------------------------------------------- groups and rooms

const kinds = {
  group: { name: 'group', plural: 'groups', path: '/groups', owned: true, history: true, sysFlag: 'group' },
  room: { name: 'room', plural: 'rooms', path: '/rooms', owned: false, history: false, sysFlag: 'room' },
};

const title = (s) => s[0].toUpperCase() + s.slice(1);

async function listIndex(view, k, params) {
  const q = params.get('q') || '';
  const skip = Number(params.get('skip')) || 0;
  const input = h('input', { id: `${k.name}-search`, type: 'search', value: q, placeholder: 'name, or attribute=value …' });
  view.append(h('h1', {}, title(k.plural)),
    h('form', { class: 'row', onsubmit: (ev) => { ev.preventDefault(); go(`#/${k.plural}${qs({ q: input.value.trim() })}`); } },
      input, h('button', { type: 'submit', id: `${k.name}-search-btn` }, 'Search')));

  const owner = h('input', { id: `${k.name}-owner`, placeholder: 'owner user id', required: true });
  const name = h('input', { id: `${k.name}-name`, placeholder: 'name' });
  const members = h('input', { id: `${k.name}-members`, placeholder: 'members: ids separated by spaces or commas' });
  const create = h('form', { class: 'card', onsubmit: async (ev) => {
    ev.preventDefault();
    const body = { members: words(members.value) };
    if (k.owned) body.owner = owner.value.trim();
    if (name.value.trim()) body.name = name.value.trim();
    await action(async () => {
      const id = await api('POST', k.path, body);
      go(`#/${k.plural}/${enc(id)}`, `Created ${k.name} ${id}.`);
    });
  } }, h('h2', {}, `New ${k.name}`),
  h('div', { class: 'row' }, k.owned ? owner : null, name, members, h('button', { type: 'submit', id: `${k.name}-create` }, 'Create')));

  const { filters, plain } = parseFilter(q);
  if (plain) filters.name = plain;
  const lists = await api('GET', `${k.path}${qs({ ...filters, _skip: skip, _limit: pageSize })}`);
  const headers = k.owned ? ['id', 'name', 'owner', 'members', 'created'] : ['id', 'name', 'members', 'created'];
  view.append(table(headers, lists.map((l) => [
    h('a', { href: `#/${k.plural}/${enc(l.id)}`, class: 'gid' }, l.id),
    l.attributes?.name ?? '',
    k.owned ? h('a', { href: `#/users/${enc(l.owner)}` }, l.owner) : null,
    String(l.members.length),
    fmtTime(l.ts),
  ].filter((c) => c !== null)), k.plural, `No ${k.name} matches.`));
  view.append(pager(params, lists.length, lists.length === pageSize, (s) => `#/${k.plural}${qs({ q, skip: s })}`), create);
}

async function listDetail(view, k, id) {
  const base = `${k.path}/${enc(id)}`;
  const l = await api('GET', base);
  const reload = () => route();

  const name = h('input', { id: 'list-name', value: l.attributes?.name ?? '', placeholder: 'name' });
  const rename = h('button', { id: 'list-rename', class: 'secondary', onclick: () => action(async () => {
    await api('POST', `${base}/attributes`, { name: name.value.trim() });
    await reload();
    showNotice('Name saved.');
  }) }, 'Rename');
  const newOwner = h('input', { id: 'list-owner', placeholder: 'new owner user id' });
  const transfer = h('button', { id: 'list-transfer', class: 'secondary', onclick: () => action(async () => {
    await api('PUT', base, { owner: newOwner.value.trim() });
    await reload();
    showNotice(`Owner is now ${newOwner.value.trim()}.`);
  }) }, 'Transfer');
  const add = h('input', { id: 'member-add', placeholder: 'user ids separated by spaces or commas' });
  const addForm = h('form', { class: 'row', onsubmit: (ev) => {
    ev.preventDefault();
    const ids = words(add.value);
    if (!ids.length) return;
    action(async () => {
      await api('POST', `${base}/members`, { members: ids });
      await reload();
      showNotice(`Added ${ids.join(', ')}.`);
    });
  } }, add, h('button', { type: 'submit', id: 'member-add-btn' }, 'Add members'));
  const del = h('button', { id: 'list-delete', class: 'danger', onclick: async () => {
    if (!(await confirmDialog(`Delete ${k.name} ${l.attributes?.name || id}${k.history ? ' and its history' : ''}?`))) return;
    await action(async () => {
      await api('DELETE', base);
      go(`#/${k.plural}`, `Deleted ${k.name} ${id}.`);
    });
  } }, `Delete ${k.name}`);

  const rows = [];
  if (k.owned) rows.push([h('a', { href: `#/users/${enc(l.owner)}` }, l.owner), 'owner', '']);
  for (const m of l.members) {
    if (k.owned && m === l.owner) continue;
    rows.push([h('a', { href: `#/users/${enc(m)}` }, m), 'member',
      h('button', { class: 'small secondary', 'data-remove': m, onclick: () => action(async () => {
        await api('DELETE', `${base}/members/${enc(m)}`);
        await reload();
        showNotice(`Removed ${m}.`);
      }) }, 'Remove')]);
  }

  view.append(
    h('p', { class: 'crumbs' }, h('a', { href: `#/${k.plural}` }, title(k.plural)), ' / '),
    h('h1', {}, l.attributes?.name || id),
    h('p', { class: 'muted' }, `${title(k.name)} `, h('code', { id: 'list-id' }, id), ` · created ${fmtTime(l.ts)} · `,
      k.history ? h('a', { href: `#/history${qs({ kind: 'group', a: id })}` }, 'history') : 'rooms keep no history',
      ' · ', h('a', { href: `#/broadcast${qs({ to: k.name, target: id })}` }, 'send a system message')),
    h('div', { class: 'card' }, h('h2', {}, 'Settings'),
      h('div', { class: 'row' }, name, rename),
      k.owned ? h('div', { class: 'row' }, newOwner, transfer) : null,
      h('div', { class: 'row' }, del)),
    h('div', { class: 'card' }, h('h2', {}, `Members (${l.members.length + (k.owned && !l.members.includes(l.owner) ? 1 : 0)})`),
      table(['user', 'role', ''], rows, 'members', 'No members.'), addForm),
    attributesEditor(`${base}/attributes`, l.attributes));
}

// ---------------------------------------------------------------- history

const convKinds = {
  friend: { a: 'user', b: 'friend', path: (a, b) => `/ctx/${enc(a)}/friends/${enc(b)}/chats` },
  stranger: { a: 'user', b: 'stranger', path: (a, b) => `/ctx/${enc(a)}/strangers/${enc(b)}/chats` },
  group: { a: 'group id', b: null, path: (a) => `/groups/${enc(a)}/chats` },
  passenger: { a: 'passenger', b: 'user', path: (a, b) => `/passengers/${enc(a)}/chats/${enc(b)}` },
};

// historyPage shows a conversation's history, newest page first; "older"
// asks for the page before the oldest record shown (ts cutoff,
// docs/maxim.md §7), until a short page says the start is reached.
async function historyPage(view, params) {
  const kind = convKinds[params.get('kind')] ? params.get('kind') : 'friend';
  const sel = h('select', { id: 'hist-kind' }, Object.keys(convKinds).map((k) => h('option', { value: k, selected: k === kind }, k)));
  const a = h('input', { id: 'hist-a', value: params.get('a') || '', required: true });
  const b = h('input', { id: 'hist-b', value: params.get('b') || '' });
  const limit = h('select', { id: 'hist-limit' }, [10, 20, 50, 100].map((n) => h('option', { value: n, selected: String(n) === (params.get('limit') || '20') }, `${n} per page`)));
  const labels = () => {
    const k = convKinds[sel.value];
    a.placeholder = k.a;
    b.placeholder = k.b || '';
    b.hidden = !k.b;
    b.required = !!k.b;
  };
  sel.addEventListener('change', labels);
  labels();
  view.append(h('h1', {}, 'History'),
    h('form', { class: 'row', onsubmit: (ev) => {
      ev.preventDefault();
      go(`#/history${qs({ kind: sel.value, a: a.value.trim(), b: convKinds[sel.value].b ? b.value.trim() : '', limit: limit.value })}`);
    } }, sel, a, b, limit, h('button', { type: 'submit', id: 'hist-load' }, 'Show')));
  if (!params.get('a') || (convKinds[kind].b && !params.get('b'))) {
    view.append(h('p', { class: 'muted' }, 'Pick a conversation: a friend pair, a stranger pair, a group, or a passenger and a user.'));
    return;
  }
  const path = convKinds[kind].path(params.get('a'), params.get('b'));
  const n = Number(limit.value);
  const list = h('ol', { id: 'history', class: 'history' });
  const status = h('span', { id: 'history-status', class: 'muted' });
  const start = h('p', { id: 'history-start', class: 'start', hidden: true }, 'Start of the conversation');
  let oldest = 0;
  let count = 0;
  const older = h('button', { id: 'older', class: 'secondary', onclick: () => load() }, '↑ Older');

  async function load() {
    older.disabled = true;
    try {
      const recs = await api('GET', `${path}${qs({ limit: n, ts: oldest || '' })}`);
      list.prepend(...recs.map(renderRecord));
      count += recs.length;
      if (recs.length) oldest = recs[0].ts;
      const done = recs.length < n;
      start.hidden = !done;
      older.hidden = done;
      status.textContent = `${count} message(s) shown${oldest ? `, oldest ${fmtTime(oldest)}` : ''}.`;
    } catch (e) {
      showError(e);
    } finally {
      older.disabled = false;
    }
  }
  const scroller = h('div', { class: 'scroll' }, start, list);
  view.append(h('div', { class: 'card' }, h('div', { class: 'row' }, older, status), scroller));
  await load();
  scroller.scrollTop = scroller.scrollHeight;
}

function renderRecord(r) {
  const c = r.content || {};
  let body;
  if (r.recalled) body = h('i', { class: 'muted' }, 'recalled');
  else if ((c.media || 0) === 0) body = c.body;
  else body = h('span', {}, `[${mediaNames[c.media] || 'media'}] `, /^https?:\/\//.test(c.body) ? h('a', { href: c.body, target: '_blank', rel: 'noopener' }, c.body) : c.body);
  return h('li', { class: 'msg', 'data-seq': r.seq },
    h('b', { class: 'speaker' }, r.speaker),
    h('div', { class: 'body' }, body),
    h('div', { class: 'meta' }, fmtTime(r.ts), r.seq ? ` · #${r.seq}` : '',
      r.edited ? ` · edited ${fmtTime(r.edited)}` : '', r.remark ? ` · remark: ${r.remark}` : ''));
}

// ---------------------------------------------------------------- broadcast

function broadcastPage(view, params) {
  const to = ['all', 'user', 'group', 'room'].includes(params.get('to')) ? params.get('to') : 'all';
  const sel = h('select', { id: 'bc-to' },
    h('option', { value: 'all', selected: to === 'all' }, 'every online session'),
    h('option', { value: 'user', selected: to === 'user' }, 'one user (or passenger)'),
    h('option', { value: 'group', selected: to === 'group' }, 'a group'),
    h('option', { value: 'room', selected: to === 'room' }, 'a room'));
  const target = h('input', { id: 'bc-target', value: params.get('target') || '', placeholder: 'id' });
  const body = h('textarea', { id: 'bc-body', rows: 4, placeholder: 'message text', required: true });
  const remark = h('input', { id: 'bc-remark', placeholder: 'remark (optional)' });
  const sync = () => {
    target.hidden = sel.value === 'all';
    target.required = sel.value !== 'all';
  };
  sel.addEventListener('change', sync);
  sync();
  const form = h('form', { class: 'card', onsubmit: async (ev) => {
    ev.preventDefault();
    const msg = { content: { media: 0, body: body.value } };
    if (remark.value.trim()) msg.remark = remark.value.trim();
    let path = '/system';
    let who = 'every online session';
    if (sel.value !== 'all') {
      path = `/system/${enc(target.value.trim())}${sel.value === 'user' ? '' : `?${sel.value}`}`;
      who = `${sel.value} ${target.value.trim()}`;
    }
    if (await action(() => api('POST', path, msg))) {
      showNotice(`System message sent to ${who}.`);
      body.value = '';
    }
  } },
  h('div', { class: 'row' }, h('label', { class: 'inline' }, 'To ', sel), target),
  body, remark,
  h('div', { class: 'row' }, h('button', { type: 'submit', id: 'bc-send' }, 'Send system message')),
  h('p', { class: 'muted' }, 'A system message is a sys event on the receivers\' sessions; it is not stored. Users offline get a push (a user or a group; not everyone, not a room).'));
  view.append(h('h1', {}, 'Broadcast'), form);
}

route();
