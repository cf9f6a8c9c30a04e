// Fleet view: panels, then every device in a windowed table. Only the rows in view exist (a pool
// of row elements whose text is updated in place), updates are applied once per animation frame,
// and the filtered, sorted list is rebuilt at most once a second (or at once on a user's change).
import { $, h, icon, setClass, setText } from './dom.js';
import { age, count, dbm, percent, score, scoreBand, statusIcon } from './format.js';
import { fleetPanels } from './fleet-panels.js';
import * as store from './fleet-store.js';

const COLUMNS = [
  ['id', 'Device'], ['status', 'Status'], ['last_seen', 'Last seen'], ['score', 'Score'],
  ['battery_level', 'Battery'], ['rssi', 'Signal'], ['active_alerts', 'Alerts'], ['type', 'Type'],
];
const phone = matchMedia('(max-width: 640px)');
const rowHeight = () => (phone.matches ? 124 : 44);
const state = { sort: { key: 'id', dir: 1 }, filter: { status: '', type: '', text: '' }, scrollTop: 0 };

const open = (id) => (location.hash = `#/device/${encodeURIComponent(id)}`);

export function fleetView(main) {
  const panels = fleetPanels();
  const search = h('input', { id: 'f-text', type: 'search', placeholder: 'Id or name', autocomplete: 'off', value: state.filter.text });
  const statusSel = h('select', { id: 'f-status' }, ...['', 'online', 'offline', 'unknown'].map((s) => h('option', { value: s, selected: s === state.filter.status }, s || 'Any status')));
  const typeSel = h('select', { id: 'f-type' }, h('option', { value: '' }, 'Any type'));
  const sortSel = h('select', { id: 'f-sort' }, ...COLUMNS.flatMap(([k, label]) => [h('option', { value: `${k}:1` }, `${label} ↑`), h('option', { value: `${k}:-1` }, `${label} ↓`)]));
  sortSel.value = `${state.sort.key}:${state.sort.dir}`;
  const shown = h('p', { class: 'muted shown', 'aria-live': 'polite' });
  const heads = COLUMNS.map(([k, label]) => h('div', { role: 'columnheader', class: `th c-${k}`, 'data-key': k }, h('button', { type: 'button', onclick: () => sortBy(k) }, label, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }))));
  const spacer = h('div', { class: 'tbody', role: 'rowgroup' });
  // No row to show: one row that says so (the filter matches nothing, or no device reported yet).
  const emptyRow = h('div', { class: 'tr empty-row', role: 'row', hidden: true }, h('div', { role: 'cell', class: 'td' }, 'No devices match'));
  const viewport = h('div', { class: 'viewport', id: 'rows' }, spacer, emptyRow);
  const table = h('div', { class: 'table', role: 'table', 'aria-label': 'Devices', id: 'devices' },
    h('div', { class: 'thead', role: 'rowgroup' }, h('div', { class: 'tr head', role: 'row' }, ...heads)), viewport);
  const field = (label, control) => h('label', { class: 'field' }, h('span', {}, label), control);
  main.replaceChildren(h('div', { id: 'fleet', class: 'view' },
    h('h1', { class: 'view-title' }, 'Fleet'),
    panels.root,
    h('section', { class: 'panel devices-panel', 'aria-label': 'Devices' },
      h('div', { class: 'toolbar' }, field('Search', search), field('Status', statusSel), field('Type', typeSel), field('Sort', sortSel), shown),
      table)));

  let rows = [];
  let listVersion = -1;
  let listMembership = -1;
  let ticks = 0;
  let focusIndex = -1;
  const pool = [];

  function sortBy(key) {
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
    sortSel.value = `${state.sort.key}:${state.sort.dir}`;
    rebuild();
  }
  const onFilter = () => {
    state.filter = { text: search.value.trim().toLowerCase(), status: statusSel.value, type: typeSel.value };
    rebuild();
  };
  search.addEventListener('input', onFilter);
  statusSel.addEventListener('change', onFilter);
  typeSel.addEventListener('change', onFilter);
  sortSel.addEventListener('change', () => {
    const [key, dir] = sortSel.value.split(':');
    state.sort = { key, dir: Number(dir) };
    rebuild();
  });

  function rebuild() {
    listVersion = store.currentVersion();
    listMembership = store.currentMembership();
    const { status, type, text } = state.filter;
    rows = [];
    for (const d of store.devices.values()) {
      if (status && d.status !== status) continue;
      if (type && (d.type ?? '') !== type) continue;
      if (text && !d.id.toLowerCase().includes(text) && !(d.name ?? '').toLowerCase().includes(text)) continue;
      rows.push(d);
    }
    const { key, dir } = state.sort;
    const value = (d) => d[key] ?? (typeof d[key] === 'string' ? '' : -Infinity);
    rows.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      return x < y ? -dir : x > y ? dir : a.id < b.id ? -1 : 1;
    });
    table.setAttribute('aria-rowcount', String(rows.length + 1));
    setText(shown, `Showing ${count(rows.length)} of ${count(store.devices.size)}`);
    emptyRow.hidden = rows.length > 0;
    setText(emptyRow.firstChild, store.devices.size === 0 ? 'No devices yet: they appear when they first report' : 'No devices match the search and filters');
    for (const th of heads) th.setAttribute('aria-sort', th.dataset.key === key ? (dir === 1 ? 'ascending' : 'descending') : 'none');
    drawRows();
  }

  function makeRow() {
    const cells = Object.fromEntries(COLUMNS.map(([k, label]) => [k, h('div', { role: 'cell', class: `td c-${k}`, 'data-label': label })]));
    const row = h('div', { class: 'tr', role: 'row', tabindex: '0' }, ...Object.values(cells));
    row.cells_ = cells;
    row.addEventListener('click', () => open(row.dataset.id));
    row.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        open(row.dataset.id);
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        moveFocus(Number(row.dataset.index) + (e.key === 'ArrowDown' ? 1 : -1));
      }
    });
    row.addEventListener('focus', () => (focusIndex = Number(row.dataset.index)));
    return row;
  }

  function moveFocus(index) {
    if (index < 0 || index >= rows.length) return;
    const rh = rowHeight();
    focusIndex = index;
    if (index * rh < viewport.scrollTop) viewport.scrollTop = index * rh;
    else if ((index + 1) * rh > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = (index + 1) * rh - viewport.clientHeight;
    drawRows();
    pool.find((r) => Number(r.dataset.index) === index)?.focus();
  }

  function fill(row, d, index) {
    const c = row.cells_;
    if (row.dataset.id !== d.id) {
      row.dataset.id = d.id;
      row.setAttribute('aria-label', `Device ${d.name ?? d.id}`);
      c.id.replaceChildren(h('span', { class: 'dev-id' }, d.id), d.name ? h('span', { class: 'dev-name' }, d.name) : '');
    }
    row.dataset.index = String(index);
    row.setAttribute('aria-rowindex', String(index + 2));
    row.style.transform = `translateY(${index * rowHeight()}px)`;
    const statusKey = `${d.status}${d.flapping ? ':f' : ''}`;
    if (c.status.dataset.v !== statusKey) {
      c.status.dataset.v = statusKey;
      c.status.replaceChildren(h('span', { class: `status status-${d.status}` }, icon(statusIcon(d.status)), d.status), d.flapping ? h('span', { class: 'tag tag-warn' }, 'flapping') : '');
    }
    setText(c.last_seen, age(d.last_seen));
    c.last_seen.dataset.ms = d.last_seen ?? '';
    const band = scoreBand(d.score);
    if (c.score.dataset.v !== `${d.score}`) {
      c.score.dataset.v = `${d.score}`;
      c.score.replaceChildren(h('span', { class: `score-pill band-${band}` }, score(d.score)));
    }
    setText(c.battery_level, percent(d.battery_level));
    setClass(c.battery_level, `td c-battery_level${typeof d.battery_level === 'number' && d.battery_level < 20 ? ' low' : ''}`);
    setText(c.rssi, dbm(d.rssi));
    if (c.active_alerts.dataset.v !== `${d.active_alerts}`) {
      c.active_alerts.dataset.v = `${d.active_alerts}`;
      c.active_alerts.replaceChildren(d.active_alerts > 0 ? h('span', { class: 'alert-count' }, icon('warn'), `${d.active_alerts}`) : h('span', { class: 'muted' }, '0'));
    }
    setText(c.type, d.type ?? '—');
  }

  function drawRows() {
    const rh = rowHeight();
    spacer.style.height = `${rows.length * rh}px`;
    const first = Math.max(0, Math.floor(viewport.scrollTop / rh) - 2);
    const n = Math.min(rows.length - first, Math.ceil(viewport.clientHeight / rh) + 4);
    while (pool.length < n) spacer.append((pool[pool.length] = makeRow()));
    for (let i = 0; i < pool.length; i++) {
      const row = pool[i];
      if (i < n) {
        row.hidden = false;
        fill(row, rows[first + i], first + i);
      } else row.hidden = true;
    }
  }

  function refreshTypes() {
    const known = new Set();
    for (const d of store.devices.values()) if (d.type) known.add(d.type);
    const have = [...typeSel.options].slice(1).map((o) => o.value);
    const want = [...known].sort().slice(0, 200);
    if (have.join('\n') !== want.join('\n')) {
      typeSel.replaceChildren(h('option', { value: '' }, 'Any type'), ...want.map((t) => h('option', { value: t, selected: t === state.filter.type }, t)));
    }
  }

  viewport.addEventListener('scroll', () => {
    state.scrollTop = viewport.scrollTop;
    drawRows();
  }, { passive: true });
  phone.addEventListener('change', drawRows);
  const off = store.onChange(drawRows);
  // Once a second: ages tick, the list is rebuilt if the fleet changed, the panels are redrawn. Each
  // step is a task of its own, so no one task holds the main thread for the whole fleet's work.
  // Sorted by id with the same devices, the order cannot have changed: the rows are only redrawn.
  const stable = () => state.sort.key === 'id' && !state.filter.status && !state.filter.type && !state.filter.text && store.currentMembership() === listMembership;
  let later = [];
  const step = (fn) => later.push(setTimeout(fn, 0));
  const tick = setInterval(() => {
    later.forEach(clearTimeout);
    later = [];
    if (store.currentVersion() !== listVersion && !stable()) rebuild();
    else drawRows();
    step(() => panels.update());
    if (ticks++ % 5 === 0) step(refreshTypes);
  }, 1000);
  rebuild();
  refreshTypes();
  requestAnimationFrame(() => {
    viewport.scrollTop = state.scrollTop;
    drawRows();
  });
  return () => {
    off();
    clearInterval(tick);
    later.forEach(clearTimeout);
    phone.removeEventListener('change', drawRows);
    panels.destroy();
    void focusIndex;
  };
}
