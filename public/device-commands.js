// Commands to a device: a form (command, JSON params, timeout) for POST /devices/{id}/commands and
// the recent commands with their states, kept live by command_update frames.
import { enc, json } from './api.js';
import { h, icon } from './dom.js';
import { age, localTime, parseTime } from './format.js';

const STATE_ICON = { queued: 'info', sent: 'info', received: 'info', succeeded: 'online', failed: 'offline', timed_out: 'warn', expired: 'warn' };

export function deviceCommands(deviceId) {
  const commands = new Map();
  const name = h('input', { id: 'cmd', name: 'command', required: true, pattern: '[A-Za-z0-9._:\\-]{1,64}', placeholder: 'restart', autocomplete: 'off' });
  const params = h('textarea', { id: 'cmd-params', name: 'params', rows: '2', placeholder: '{"delay_s": 5}', spellcheck: 'false' });
  const timeout = h('input', { id: 'cmd-timeout', name: 'timeout_s', type: 'number', min: '1', max: '3600', value: '30', inputmode: 'numeric' });
  const message = h('p', { class: 'form-message', role: 'status' });
  const body = h('tbody');
  const form = h('form', { class: 'form-grid', 'aria-label': 'Send a command' },
    h('label', { class: 'field' }, h('span', {}, 'Command'), name),
    h('label', { class: 'field wide' }, h('span', {}, 'Params (JSON object, optional)'), params),
    h('label', { class: 'field' }, h('span', {}, 'Timeout (s)'), timeout),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Send command'), message));
  const root = h('section', { class: 'panel', 'aria-label': 'Commands' },
    h('h2', { class: 'panel-title' }, 'Commands'), form,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data cards-on-phone', 'aria-label': 'Commands', id: 'device-commands' },
      h('thead', {}, h('tr', {}, ...['Command', 'State', 'Attempts', 'Result', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))), body)));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let parsed;
    try {
      parsed = params.value.trim() ? JSON.parse(params.value) : undefined;
      if (parsed !== undefined && (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))) throw new Error('params must be a JSON object');
    } catch (err) {
      message.textContent = `Params: ${err.message}`;
      params.focus();
      return;
    }
    try {
      const c = await json(`/devices/${enc(deviceId)}/commands`, { method: 'POST', body: { command: name.value.trim(), ...(parsed ? { params: parsed } : {}), timeout_s: Number(timeout.value) || 30 } });
      commands.set(c.command_id, c);
      message.textContent = `${c.command} ${c.state}`;
      name.value = '';
      draw();
    } catch (err) {
      message.textContent = `Not sent: ${err.message}`;
    }
  });

  function draw() {
    const list = [...commands.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1)).slice(0, 20);
    body.replaceChildren(...list.map((c) => h('tr', { 'data-command': c.command_id, 'data-state': c.state },
      h('td', { 'data-label': 'Command' }, h('b', {}, c.command), c.params && Object.keys(c.params).length ? h('code', { class: 'block small' }, JSON.stringify(c.params)) : ''),
      h('td', { 'data-label': 'State' }, h('span', { class: `state-badge cmd-${c.state}` }, icon(STATE_ICON[c.state] ?? 'info'), c.state.replace('_', ' '))),
      h('td', { 'data-label': 'Attempts', class: 'num' }, `${c.attempts ?? 0} of ${c.max_attempts ?? '—'}`),
      h('td', { 'data-label': 'Result' }, c.result === null || c.result === undefined ? '—' : h('code', { class: 'small' }, JSON.stringify(c.result).slice(0, 120))),
      h('td', { 'data-label': 'Updated' }, localTime(parseTime(c.updated_at)), ' ', h('span', { class: 'muted', 'data-ago': parseTime(c.updated_at) ?? '' }, age(parseTime(c.updated_at)))))));
    if (list.length === 0) body.append(h('tr', {}, h('td', { colspan: '5', class: 'empty' }, 'No commands yet.')));
  }

  return {
    root,
    async start() {
      try {
        const page = await json(`/devices/${enc(deviceId)}/commands?limit=20`);
        for (const c of page.commands) commands.set(c.command_id, c);
      } catch (e) {
        message.textContent = `Could not load commands: ${e.message}`;
      }
      draw();
    },
    live(f) {
      commands.set(f.command_id, { ...commands.get(f.command_id), ...f });
      draw();
    },
  };
}
