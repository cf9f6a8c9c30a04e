import { RULE_SET_LIMITS, ruleSetSchema } from '../../domain/rule-set.js';
import type { Propagation, RuleSetView, RuleStore } from '../../hub/rule-store.js';
import type { Principal } from '../../security/api-keys.js';
import type { HttpResponse } from '../uws.js';
import { failRequest, sendJson } from './respond.js';
import { route, type Route } from './router.js';

/** `If-Match: "7"` (or `7`, `W/"7"`): the version the change was made against; `*` or none: any. Undefined: malformed. */
export function expectedVersion(header: string): number | null | undefined {
  const value = header.trim();
  if (value === '' || value === '*') return null;
  // Quoted as an ETag is, or bare; an unbalanced quote or a list is not a version.
  const match = /^(?:W\/)?(?:"(\d{1,9})"|(\d{1,9}))$/.exec(value);
  return match ? Number(match[1] ?? match[2]) : undefined;
}

const etag = (version: number) => `"${version}"`;

function ruleSetBody(view: RuleSetView, propagation?: Propagation) {
  return {
    version: view.version,
    source: view.source,
    updated_by: view.updatedBy,
    updated_at: view.updatedAt?.toISOString() ?? null,
    ...view.document,
    ...(propagation ? { applied: { instances: propagation.instances, missing: propagation.missing } } : {}),
  };
}

const keyId = (p: Principal) => (p.kind === 'key' ? p.key.id : null);

const MALFORMED = { detail: 'If-Match must be a rule-set version as GET /rules gives it in ETag ("7"), or *', error: { code: 'invalid_if_match', message: 'malformed If-Match' } };

/** Answers a change: 412 when the version moved on meanwhile, else the new version with its ETag. */
function answerChange(res: HttpResponse, store: RuleStore, change: ReturnType<RuleStore['replace']>, aborted: { value: boolean }, refused: (code: string) => void): void {
  change.then(
    (outcome) => {
      if (aborted.value) return;
      res.cork(() => {
        if (outcome === 'stale') {
          refused('stale_version');
          const current = store.view.version;
          sendJson(res, '412 Precondition Failed', { detail: `the rule set changed since the version in If-Match (now ${current}): GET /rules, then retry`, error: { code: 'stale_version', message: 'stale version' }, version: current }, { etag: etag(current) });
        } else sendJson(res, '200 OK', ruleSetBody(outcome.view, outcome.propagation), { etag: etag(outcome.view.version) });
      });
    },
    (error: unknown) => failRequest(res, error, aborted),
  );
}

const ANSWERS = {
  '400': 'If-Match is not a version (invalid_if_match)',
  '412': 'Another version was stored since the one in If-Match (stale_version); the body names the version in force',
};

/**
 * The alert rule set as data (docs/health-and-alerts.md): read, replace as a whole, or reset to the
 * built-in rules. `refused` counts a 400 or 412 (vigil_http_refused_total{code}).
 */
export function ruleRoutes(store: RuleStore, refused: (code: string) => void): Route[] {
  const malformed = (res: HttpResponse) => {
    refused('invalid_if_match');
    sendJson(res, '400 Bad Request', MALFORMED);
  };
  /** PUT and DELETE: the If-Match version read once, then the change answered 200 or 412. */
  const change = (res: HttpResponse, ifMatch: string | undefined, aborted: { value: boolean }, apply: (expected: number | null) => ReturnType<RuleStore['reset']>) => {
    const expected = expectedVersion(ifMatch ?? '');
    if (expected === undefined) return malformed(res);
    answerChange(res, store, apply(expected), aborted, refused);
  };
  return [
    route({
      method: 'GET',
      path: '/rules',
      summary: 'The alert rule set in force: version (also the ETag), rules for every device, per device type and per device',
      action: 'rules.read',
      device: 'none',
      ok: '200',
      handle(res, _r) {
        sendJson(res, '200 OK', ruleSetBody(store.view), { etag: etag(store.view.version) });
      },
    }),
    route({
      method: 'PUT',
      path: '/rules',
      summary: 'Replace the whole rule set (If-Match: the version it replaces; 412 if another was stored since); applied on every instance before the answer',
      action: 'rules.write',
      device: 'none',
      body: ruleSetSchema,
      // A rule set as large as its bounds (10 000 per-device overrides) is far over HTTP_MAX_BODY_BYTES.
      maxBodyBytes: RULE_SET_LIMITS.bodyBytes,
      headers: ['if-match'],
      ok: '200',
      answers: ANSWERS,
      handle(res, r) {
        change(res, r.headers['if-match'], r.aborted, (expected) => store.replace(r.body, expected, keyId(r.principal)));
      },
    }),
    route({
      method: 'DELETE',
      path: '/rules',
      summary: 'Back to the built-in rules only, as a new version (If-Match as for PUT)',
      action: 'rules.write',
      device: 'none',
      headers: ['if-match'],
      ok: '200',
      answers: ANSWERS,
      handle(res, r) {
        change(res, r.headers['if-match'], r.aborted, (expected) => store.reset(expected, keyId(r.principal)));
      },
    }),
  ];
}
