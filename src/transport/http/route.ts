import type { z } from 'zod';
import { describeTextPath, findUnstorableText } from '../../domain/storable-text.js';
import type { Principal } from '../../security/api-keys.js';
import { authorize, type Action, type Decision } from '../../security/policy.js';
import type { HttpRequest, HttpResponse } from '../uws.js';
import { readBody } from './read-body.js';
import { sendJson, validationError } from './respond.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteRequest<B, Q> {
  readonly principal: Principal;
  readonly requestId: string;
  readonly ip: string;
  /** The path's `{…}` segments, percent-decoded. */
  readonly params: readonly string[];
  readonly query: Q;
  readonly body: B;
  /** The body as parsed JSON before the schema (HTTP ingest validates it again as telemetry). */
  readonly rawBody: unknown;
  /** The request headers the route asked for (the request object is gone once a body is read). */
  readonly headers: Readonly<Record<string, string>>;
  readonly aborted: { value: boolean };
  /** The same action on a device the handler found (an alert's device), or for filtering an aggregate. */
  authorize(deviceId: string): Decision;
  /** The body of a 403 the handler decided (counted in vigil_http_refused_total like the others). */
  forbidden(message: string): [status: '403 Forbidden', body: unknown];
}

/**
 * How the route finds the device its action touches: the first path parameter; a list read from
 * the validated body; `handler` when only the handler can know (it calls `authorize`); `none` for
 * actions on no single device (aggregates filter through `authorize`).
 */
export type DeviceSource<B> = 'path' | 'none' | 'handler' | { readonly fromBody: (body: B) => readonly string[] };

export interface RouteDef<B, Q> {
  readonly method: HttpMethod;
  /** OpenAPI style: `/status/{device_id}`. */
  readonly path: string;
  readonly summary: string;
  readonly action: Action;
  readonly device: DeviceSource<B>;
  readonly body?: z.ZodType<B>;
  /** An empty body is read as `{}`. */
  readonly optionalBody?: boolean;
  readonly maxBodyBytes?: number;
  readonly query?: z.ZodType<Q>;
  readonly headers?: readonly string[];
  /** The success status, for the OpenAPI document. */
  readonly ok: string;
  /** Left out of the OpenAPI document (the dashboard's files). */
  readonly internal?: boolean;
  /** Answers of this route besides the shared ones, for the OpenAPI document (status → description). */
  readonly answers?: Readonly<Record<string, string>>;
  handle(res: HttpResponse, r: RouteRequest<B, Q>): void;
}

/** A route with its types erased, as the table holds it. */
export interface Route {
  readonly method: HttpMethod;
  readonly path: string;
  readonly summary: string;
  readonly action: Action;
  readonly deviceSource: 'path' | 'none' | 'handler' | 'body';
  readonly body: z.ZodType | undefined;
  readonly optionalBody: boolean;
  readonly query: z.ZodType | undefined;
  readonly ok: string;
  readonly internal: boolean;
  readonly answers: Readonly<Record<string, string>>;
  /** Runs the route once the request passed the checks every route shares. */
  run(res: HttpResponse, req: HttpRequest, base: BaseRequest, env: RouteEnv): void;
}

/** What the router found before the route runs (router.ts). */
export interface BaseRequest {
  /** A promise while a JWT is verified (null once refused: the answer was sent). */
  readonly principal: Principal | Promise<Principal | null>;
  readonly requestId: string;
  readonly ip: string;
  readonly params: readonly string[];
  readonly aborted: { value: boolean };
}

export interface RouteEnv {
  readonly maxBodyBytes: number;
  readonly countRefused: (code: string) => void;
  /** Runs a handler step inside the error boundary. */
  readonly guarded: (res: HttpResponse, step: () => void) => void;
}

export function route<B = undefined, Q = undefined>(def: RouteDef<B, Q>): Route {
  const device = def.device;
  return {
    method: def.method,
    path: def.path,
    summary: def.summary,
    action: def.action,
    deviceSource: typeof device === 'string' ? device : 'body',
    body: def.body,
    optionalBody: def.optionalBody ?? false,
    query: def.query,
    ok: def.ok,
    internal: def.internal ?? false,
    answers: def.answers ?? {},
    run(res, req, base, env) {
      let query = undefined as Q;
      if (def.query) {
        const given = Object.fromEntries(new URLSearchParams(req.getQuery() ?? ''));
        // URLSearchParams turns malformed escapes into U+FFFD but lets %00 through: refuse it here,
        // as in bodies, before any query value can reach the database.
        const at = findUnstorableText(given);
        if (at !== null) {
          env.countRefused('unstorable_text');
          const msg = `${describeTextPath(at)} holds NUL (U+0000), which cannot be stored or queried`;
          return sendJson(res, '422 Unprocessable Entity', { detail: [{ loc: ['query', ...at], msg, type: 'unstorable_text' }] });
        }
        const parsed = def.query.safeParse(given);
        if (!parsed.success) {
          env.countRefused('invalid_query');
          return sendJson(res, '422 Unprocessable Entity', validationError('query', parsed.error));
        }
        query = parsed.data;
      }
      const headers: Record<string, string> = {};
      for (const name of def.headers ?? []) headers[name] = req.getHeader(name);
      // The request object is only valid now; a JWT's principal may come later (query and headers are copied above).
      const withPrincipal = (step: (principal: Principal) => void) => {
        const given = base.principal;
        if (!(given instanceof Promise)) return step(given);
        given.then(
          (principal) => {
            if (principal !== null && !base.aborted.value) res.cork(() => env.guarded(res, () => step(principal)));
          },
          (error: unknown) => {
            if (!base.aborted.value) res.cork(() => env.guarded(res, () => { throw error; }));
          },
        );
      };
      const request = (principal: Principal, body: B, rawBody: unknown): RouteRequest<B, Q> => ({
        ...base,
        principal,
        query,
        body,
        rawBody,
        headers,
        authorize: (deviceId) => authorize(principal, def.action, deviceId),
        forbidden: (message) => {
          env.countRefused('forbidden');
          return forbiddenAnswer(message);
        },
      });
      const schema = def.body;
      if (schema === undefined) return withPrincipal((principal) => def.handle(res, request(principal, undefined as B, undefined)));
      // The body is read at once (uWS drops data that arrives before a reader is set), in parallel with a JWT's verification.
      readBody(res, def.maxBodyBytes ?? env.maxBodyBytes, base.aborted, def.optionalBody ?? false, env.countRefused, (raw) =>
        withPrincipal((principal) =>
          env.guarded(res, () => {
            const parsed = schema.safeParse(raw);
            if (!parsed.success) {
              env.countRefused('invalid_body');
              return sendJson(res, '422 Unprocessable Entity', validationError('body', parsed.error));
            }
            if (typeof device === 'object') {
              for (const id of device.fromBody(parsed.data)) {
                const decision = authorize(principal, def.action, id);
                if (!decision.ok) {
                  env.countRefused('forbidden');
                  return sendJson(res, ...forbiddenAnswer(decision.message));
                }
              }
            }
            def.handle(res, request(principal, parsed.data, raw));
          }),
        ),
      );
    },
  };
}

export const forbiddenAnswer = (message: string): [status: '403 Forbidden', body: unknown] => ['403 Forbidden', { detail: message, error: { code: 'forbidden', message } }];
