// A device's settings: name, type and offline timeout, shown from GET /devices/{id} and saved with
// PUT /devices/{id} (an admin key; a key without that scope sees the hub's refusal).
import { enc, json } from './api.js';
import { h } from './dom.js';

export function deviceSettings(deviceId, onSaved) {
  const name = h('input', { id: 'set-name', maxlength: '200', autocomplete: 'off' });
  const type = h('input', { id: 'set-type', pattern: '[A-Za-z0-9._:\\-]{1,64}', autocomplete: 'off' });
  const timeout = h('input', { id: 'set-timeout', type: 'number', min: '1', max: String(7 * 24 * 3600), inputmode: 'numeric' });
  const effective = h('span', { class: 'muted small' });
  const message = h('p', { class: 'form-message', role: 'status' });
  const form = h('form', { class: 'form-grid', 'aria-label': 'Device settings' },
    h('label', { class: 'field' }, h('span', {}, 'Name'), name),
    h('label', { class: 'field' }, h('span', {}, 'Type'), type),
    h('label', { class: 'field' }, h('span', {}, 'Offline timeout (s, empty: the hub default)'), timeout, effective),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save settings'), message));
  const root = h('section', { class: 'panel', 'aria-label': 'Settings' }, h('h2', { class: 'panel-title' }, 'Settings'), form);

  const show = (d) => {
    name.value = d.name ?? '';
    type.value = d.type ?? '';
    timeout.value = d.offline_timeout_s ?? '';
    effective.textContent = `In effect: ${d.effective_offline_timeout_s} s`;
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const saved = await json(`/devices/${enc(deviceId)}`, { method: 'PUT', body: { name: name.value.trim() || null, type: type.value.trim() || null, offline_timeout_s: timeout.value === '' ? null : Number(timeout.value) } });
      show(saved);
      message.textContent = 'Saved.';
      onSaved(saved);
    } catch (err) {
      message.textContent = `Not saved: ${err.message}`;
    }
  });

  // A later edit makes an earlier "Saved." (or refusal) stale: it goes as soon as the form changes.
  form.addEventListener('input', () => (message.textContent = ''));

  return {
    root,
    /** The device as GET /devices/{id} answered (the device view reads it first). */
    show(d) {
      show(d);
      onSaved(d);
    },
  };
}
