/*
 * static/dashboard.js - the dashboard page's script: renders the parents the
 * server pushes over Server-Sent Events (/api/events), filters them, runs
 * the actions, and pages through one parent's children.
 *
 * Rows are kept by job id: a filter asks /api/parents once, and every live
 * snapshot (the newest parents, read once per tick for all pages) replaces
 * the rows it holds.  Everything the database gives is put in the page as
 * text, never as HTML.  bigint values arrive as strings.
 */
'use strict';

const token = new URLSearchParams(location.search).get('token');
const rows = new Map();          /* job_id (string) → parent row */
let readOnly = true;
let open = null;                 /* the parent whose children are shown: { id, page, pages } */
let childReload = 0;             /* time of the last reload of the open children page */
let childTimer = null;           /* a reload waiting for its turn */
let histAt = 0;                  /* time of the last histogram read, 0: none shown */
/* live reloads read the histogram (a pass over all the parent's children) at most this often */
const HIST_EVERY_MS = 10000;

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'style') Object.assign(e.style, v); /* CSSOM: allowed by the page's CSP */
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

async function api(path, options = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (options.method === 'POST') headers['X-Batchjob-Dashboard'] = '1';
  const res = await fetch(path, { ...options, headers });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw Object.assign(new Error(body.error || res.statusText), { status: res.status, code: body.code });
  return body;
}

/* one message at a time; `source` says what showed it, so that a later
 * success of the same kind (a filter, an action) clears it, and a background
 * refresh never hides an action's refusal */
let messageSource = null;
function showMessage(text, source) {
  const m = $('#message');
  if (!text && source !== messageSource) return;
  messageSource = text ? source : null;
  m.textContent = text || '';
  m.hidden = !text;
}

/* ---- formatting ---- */

const big = (s) => (s === null || s === undefined ? '—' : BigInt(s).toLocaleString('en-US'));
const pct = (part, whole) => (Number(whole) > 0 ? Math.min(100, (100 * Number(part)) / Number(whole)) : 0);

function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}

function failure(p) {
  if (p.error_details) return p.error_details;
  if (Number(p.failed) > 0) return `${p.failed} out of ${p.children} batch jobs failed so far`;
  return '';
}

/* ---- the parents table ---- */

function filters() {
  return {
    status: $('#f-status').value,
    created_by: $('#f-created-by').value.trim(),
    id: $('#f-id').value.trim(),
  };
}

function matches(p, f) {
  return (!f.status || p.status === f.status) &&
    (!f.created_by || p.created_by === f.created_by) &&
    (!f.id || p.job_id === f.id);
}

function progressBar(p) {
  const total = p.total_records;
  const ok = pct(p.success_count, total);
  const err = pct(p.error_count, total);
  /* processed but not yet split into successes and errors */
  const rest = Math.max(0, pct(p.processed_records, total) - ok - err);
  return el('div', {},
    el('div', {
      class: 'bar', role: 'progressbar', 'aria-valuemin': 0,
      'aria-valuemax': total ?? 0, 'aria-valuenow': p.processed_records,
      'data-percent': pct(p.processed_records, total).toFixed(2),
    },
      el('span', { class: 'ok', style: { width: ok + '%' }, title: `${big(p.success_count)} succeeded` }),
      el('span', { class: 'err', style: { width: err + '%' }, title: `${big(p.error_count)} failed` }),
      el('span', { class: 'done', style: { width: rest + '%' } })),
    el('div', { class: 'bar-text' },
      `${big(p.processed_records)} / ${big(total)}`,
      p.percent_done !== null ? ` (${p.percent_done}%)` : '',
      Number(p.error_count) > 0 ? ` · ${big(p.error_count)} errors` : ''));
}

function actions(p) {
  if (readOnly) return el('td', { class: 'actions' });
  const finished = ['COMPLETED', 'FAILED', 'CANCELLED'].includes(p.status);
  return el('td', { class: 'actions' },
    finished ? null : el('button', {
      type: 'button', class: 'action cancel',
      onclick: (ev) => { ev.stopPropagation(); act(`/api/parents/${p.job_id}/cancel`, `Cancel job ${p.job_id} and every unfinished child?`); },
    }, 'Cancel'),
    Number(p.failed) > 0 ? el('button', {
      type: 'button', class: 'action retry',
      onclick: (ev) => { ev.stopPropagation(); act(`/api/parents/${p.job_id}/retry`, `Retry the ${p.failed} failed children of job ${p.job_id}?`); },
    }, 'Retry failed') : null);
}

function render() {
  const f = filters();
  const list = [...rows.values()].filter((p) => matches(p, f))
    .sort((a, b) => (BigInt(b.job_id) > BigInt(a.job_id) ? 1 : -1)).slice(0, 500);
  const body = el('tbody');
  for (const p of list) {
    body.append(el('tr', {
      'data-job-id': p.job_id, class: open && open.id === p.job_id ? 'selected' : null,
      onclick: () => openChildren(p.job_id),
    },
      el('td', { class: 'num' }, p.job_id, p.parent_job_id ? el('div', { class: 'bar-text' }, 'in ' + p.parent_job_id) : null),
      el('td', {}, el('span', { class: 'status ' + p.status }, p.status)),
      el('td', {}, progressBar(p)),
      el('td', { class: 'counts' },
        ...['pending', 'processing', 'completed', 'failed', 'cancelled']
          .filter((k) => k !== 'cancelled' || Number(p.cancelled) > 0)
          .map((k) => el('span', { class: 'c-' + k, 'data-count': k }, `${big(p[k])} ${k}`))),
      el('td', { class: 'num' }, p.records_per_second !== null ? `${p.records_per_second.toLocaleString('en-US')}/s` : '—'),
      el('td', { class: 'num eta' }, ['COMPLETED', 'FAILED', 'CANCELLED'].includes(p.status) ? 'done' : duration(p.eta_seconds)),
      el('td', { class: 'num' }, duration(p.age_seconds)),
      el('td', {}, p.created_by ?? ''),
      el('td', { class: 'failure' }, failure(p)),
      actions(p)));
  }
  $('#parents tbody').replaceWith(body);
  $('#empty').hidden = list.length > 0;
  $('#reap').hidden = readOnly;
}

async function loadFiltered() {
  const f = filters();
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) qs.set(k, v);
  if (f.id && !/^\d+$/.test(f.id)) { showMessage(`"${f.id}" is not a job id`, 'filter'); render(); return; }
  try {
    for (const p of await api('/api/parents?' + qs)) rows.set(p.job_id, p);
    showMessage('', 'filter');
  } catch (e) {
    showMessage(e.message, 'filter');
  }
  render();
}

async function act(path, question) {
  if (!window.confirm(question)) return;
  try {
    await api(path, { method: 'POST' });
    showMessage('', 'action');
    await loadFiltered();
    if (open) loadChildren();
  } catch (e) {
    showMessage(`${e.message}${e.code ? ` (${e.code})` : ''}`, 'action');
  }
}

/* ---- the children of one parent ---- */

function openChildren(id) {
  open = { id, page: 1, pages: 1 };
  histAt = 0;
  $('#children').hidden = false;
  $('#c-parent').textContent = id;
  render();
  loadChildren();
}

async function loadChildren(live = false) {
  if (!open) return;
  const want = open;
  childReload = Date.now();
  const withHist = !live || histAt === 0 || Date.now() - histAt >= HIST_EVERY_MS;
  try {
    const [page, hist] = await Promise.all([
      api(`/api/parents/${want.id}/children?page=${want.page}`),
      withHist ? api(`/api/parents/${want.id}/durations`) : null,
    ]);
    if (open !== want) return;
    open.pages = page.pages;
    $('#c-page').textContent = page.page;
    $('#c-pages').textContent = page.pages;
    $('#c-total').textContent = big(page.total);
    const body = el('tbody');
    for (const c of page.children) {
      body.append(el('tr', { 'data-batch': c.batch_number },
        el('td', { class: 'num' }, c.batch_number),
        el('td', { class: 'num' }, c.job_id),
        el('td', {}, el('span', { class: 'status ' + c.status }, c.status)),
        el('td', { class: 'num' }, `${c.attempts} / ${c.max_attempts}`),
        el('td', {}, c.locked_by ?? ''),
        el('td', { class: 'num' }, c.locked_until ? new Date(c.locked_until).toLocaleTimeString() : ''),
        el('td', { class: 'num' }, c.duration_seconds !== null ? c.duration_seconds.toFixed(3) + 's' : ''),
        el('td', { class: 'failure' }, c.error_details ?? '')));
    }
    $('#child-table tbody').replaceWith(body);
    if (hist !== null) {
      renderHistogram(hist);
      histAt = hist.buckets.length > 0 ? Date.now() : 0;
    }
    showMessage('', 'children');
  } catch (e) {
    showMessage(e.message, 'children');
  }
}

function renderHistogram(h) {
  const box = $('#histogram');
  box.replaceChildren();
  if (h.buckets.length === 0) {
    box.append(el('span', { class: 'hnone' }, 'no finished children yet'));
    $('#histogram-caption').textContent = '';
    return;
  }
  const max = Math.max(...h.buckets.map((b) => Number(b.count)));
  for (const b of h.buckets) {
    box.append(el('div', {
      class: 'hbar', style: { height: (100 * Number(b.count)) / max + '%' },
      title: `${b.from_seconds.toFixed(3)}s – ${b.to_seconds.toFixed(3)}s: ${b.count} children`,
    }));
  }
  $('#histogram-caption').textContent =
    `batch durations of ${big(h.count)} finished children: ${h.min_seconds.toFixed(3)}s to ${h.max_seconds.toFixed(3)}s`;
}

/* ---- live updates ---- */

function connect() {
  const es = new EventSource('/api/events' + (token ? '?token=' + encodeURIComponent(token) : ''));
  const live = $('#live');
  es.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
  es.onerror = () => { live.textContent = 'reconnecting…'; live.className = 'live off'; };
  es.addEventListener('parents', (ev) => {
    const data = JSON.parse(ev.data);
    if (data.error) { showMessage(data.error, 'live'); return; }
    showMessage('', 'live');
    let openChanged = false;
    for (const p of data.parents) {
      const old = rows.get(p.job_id);
      if (open && p.job_id === open.id && (!old || old.processed_records !== p.processed_records ||
          old.status !== p.status || old.processing !== p.processing || old.failed !== p.failed)) openChanged = true;
      rows.set(p.job_id, p);
    }
    render();
    if (openChanged) reloadChildrenSoon();
  });
}

/* reloads the open children page at most once a second, and always after the last change */
function reloadChildrenSoon() {
  if (childTimer !== null) return;
  childTimer = setTimeout(() => { childTimer = null; loadChildren(true); },
    Math.max(0, 1000 - (Date.now() - childReload)));
}

/* ---- wiring ---- */

document.addEventListener('DOMContentLoaded', async () => {
  $('#filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadFiltered(); });
  $('#f-status').addEventListener('change', loadFiltered);
  $('#f-created-by').addEventListener('change', loadFiltered);
  $('#f-id').addEventListener('input', () => { clearTimeout(window.idTimer); window.idTimer = setTimeout(loadFiltered, 250); });
  $('#reap').addEventListener('click', async () => {
    if (!window.confirm('Take back every job whose lease expired?')) return;
    try {
      const r = await api('/api/reap', { method: 'POST' });
      showMessage('', 'action');
      $('#reap').title = `${r.reaped} jobs reaped`;
    } catch (e) {
      showMessage(`${e.message}${e.code ? ` (${e.code})` : ''}`, 'action');
    }
  });
  $('#c-close').addEventListener('click', () => { open = null; $('#children').hidden = true; render(); });
  for (const b of document.querySelectorAll('.pager button')) {
    b.addEventListener('click', () => {
      if (!open) return;
      const to = { first: 1, prev: open.page - 1, next: open.page + 1, last: open.pages }[b.dataset.page];
      open.page = Math.min(Math.max(1, to), open.pages);
      loadChildren();
    });
  }
  try {
    readOnly = (await api('/api/config')).read_only;
  } catch (e) {
    showMessage(e.message, 'config');
  }
  await loadFiltered();
  connect();
});
