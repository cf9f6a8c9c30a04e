// The health score and what it is made of: each component's value with its unit, its 0–100
// score, its weight, its share of the total, and the rule that maps the value to points.
import { h } from './dom.js';
import { age, dbm, localTime, millis, parseTime, percent, ratio, score, scoreBand } from './format.js';

const EXPLAIN = {
  availability: ['uptime over 24 h', ratio, 'online now is half; uptime over 24 h the other half; flapping costs 25'],
  battery: ['battery level', percent, '0 points at 10 %, 100 at 50 %'],
  signal: ['signal strength', dbm, '0 points at −100 dBm, 100 at −50 dBm'],
  error_rate: ['error rate', ratio, '0 points at 20 %, 100 at 0 %'],
  response_time: ['mean of the last 10 responses', millis, '0 points at 2000 ms, 100 at 200 ms'],
  freshness: ['time since last heard', (v) => (typeof v === 'number' ? `${v} s` : '—'), '100 points within a quarter of the offline timeout, 0 at the timeout'],
};

export function scorePanel() {
  const big = h('span', { id: 'device-score', class: 'score-big' }, '—');
  const band = h('span', { class: 'band-word' });
  // When the score (and its components' values) were computed: an offline device is scored no more,
  // so its freshness is that of the moment it was last scored.
  const at = h('time', { id: 'device-scored-at', class: 'muted small' });
  const ago = h('span', { 'data-ago': '' });
  const when = h('span', { class: 'scored-at muted small' }, 'scored at ', at, ' (', ago, ')');
  when.hidden = true;
  const body = h('tbody');
  const root = h('section', { class: 'panel', 'aria-label': 'Health score' },
    h('h2', { class: 'panel-title' }, 'Health score'),
    h('p', { class: 'score-line' }, big, band, when),
    h('div', { class: 'table-wrap' }, h('table', { class: 'data components cards-on-phone', 'aria-label': 'Score components' },
      h('thead', {}, h('tr', {}, ...['Component', 'Value', 'Points', 'Weight', 'How it scores'].map((c) => h('th', { scope: 'col' }, c)))), body)),
    h('p', { class: 'muted small' }, 'Score = Σ points × weight / Σ weight over the components the device reports.'));

  return {
    root,
    update(health) {
      big.textContent = health ? score(health.score) : '—';
      big.className = `score-big band-${scoreBand(health?.score)}`;
      band.textContent = health ? { good: 'good (≥ 80)', fair: 'fair (50–80)', poor: 'poor (< 50)', none: '' }[scoreBand(health.score)] : 'not scored yet';
      const scoredAt = parseTime(health?.timestamp);
      when.hidden = scoredAt === null;
      at.dateTime = health?.timestamp ?? '';
      at.textContent = localTime(scoredAt);
      ago.dataset.ago = scoredAt ?? '';
      ago.textContent = age(scoredAt);
      const entries = Object.entries(health?.components ?? {});
      body.replaceChildren(...entries.map(([name, c]) => {
        const [what, fmt, how] = EXPLAIN[name] ?? [name, String, ''];
        const meter = h('span', { class: 'bar-track', 'aria-hidden': 'true' }, h('span', { class: `bar-fill band-${scoreBand(c.score)}` }));
        meter.firstChild.style.width = `${Math.max(0, Math.min(100, c.score))}%`;
        return h('tr', {},
          h('td', { 'data-label': 'Component' }, h('b', {}, name.replace('_', ' ')), h('span', { class: 'muted block' }, what)),
          h('td', { 'data-label': 'Value', class: 'num' }, fmt(c.value)),
          h('td', { 'data-label': 'Points', class: 'num' }, h('span', { class: 'points' }, score(c.score), meter)),
          h('td', { 'data-label': 'Weight', class: 'num' }, String(c.weight)),
          h('td', { 'data-label': 'How it scores', class: 'muted' }, how));
      }));
    },
  };
}
