// @ts-check
/**
 * A small browser client for Vigil's WebSocket protocol (docs/websocket-protocol.md, "Browser
 * client"). An ES module with no dependencies and no build step; its types are JSDoc, checked by
 * tsc. It connects, authenticates, subscribes, and on every reconnect (exponential backoff with
 * jitter) subscribes again, resuming each device from its last `seq` within its `epoch` (and the
 * fleet from its last `fleet_seq` when the hub offers it), dropping frames it has already handed
 * over. A ws-token is renewed on the open connection; refused credentials (4401/4403/4410) stop it
 * for good with status `closed` and the close code. The dashboard's public/live.js is built on it.
 *
 *   import { createVigilClient } from '/vigil-client.js';
 *   // postWsToken: POST /ws-token's answer ({ token, expires_at }), null without a key
 *   const vigil = createVigilClient({ url: `wss://${location.host}/ws`, token: () => postWsToken() });
 *   vigil.onStatus((status, detail) => status === 'closed' && askForKey(detail?.code));
 *   const stop = vigil.subscribeDevice('pump-7', (frame) => render(frame));
 */

/** @typedef {'connecting' | 'open' | 'reconnecting' | 'closed'} VigilStatus */
/**
 * Why the client is `reconnecting` (the close that ended the last connection, and the wait before
 * the next attempt) or `closed` for good (`close()`: 1000; credentials the hub refused: 4401 / 4410;
 * see TERMINAL_CLOSE_CODES).
 * @typedef {{ code: number, reason: string, retryInMs?: number }} VigilStatusDetail
 */
/**
 * What a token function may return: a token, the answer of `POST /ws-token` as it is (its
 * `expires_at` schedules the renewal), or null when the hub needs none (no `auth` is sent).
 * @typedef {string | { token: string, expires_at?: string } | null} VigilTokenGrant
 */
/** @typedef {{ type: string, [field: string]: unknown }} VigilFrame */
/**
 * What the client needs of a WebSocket (the browser's, `ws` in Node, or a test's fake).
 * @typedef {{
 *   readonly readyState: number,
 *   send(data: string): void,
 *   close(code?: number, reason?: string): void,
 *   onopen: ((event: unknown) => void) | null,
 *   onmessage: ((event: { data: unknown }) => void) | null,
 *   onclose: ((event: { code: number, reason: string }) => void) | null,
 *   onerror: ((event: unknown) => void) | null,
 * }} WebSocketLike
 */
/** @typedef {new (url: string) => WebSocketLike} WebSocketConstructor */
/**
 * @typedef {{
 *   url: string,
 *   token?: string | (() => Promise<VigilTokenGrant>),
 *   WebSocket?: WebSocketConstructor,
 *   reconnect?: { minMs?: number, maxMs?: number },
 *   requestTimeoutMs?: number,
 *   renewMs?: number,
 *   tokenInUrl?: boolean,
 * }} VigilClientOptions
 */
/**
 * @typedef {{
 *   subscribeDevice(id: string, onFrame: (frame: VigilFrame) => void): () => void,
 *   subscribeFleet(options: { summaries?: boolean }, onFrame: (frame: VigilFrame) => void): () => void,
 *   ackAlert(alertId: string): Promise<void>,
 *   onStatus(fn: (status: VigilStatus, detail: VigilStatusDetail | null) => void): () => void,
 *   onError(fn: (error: VigilError) => void): () => void,
 *   readonly status: VigilStatus,
 *   readonly statusDetail: VigilStatusDetail | null,
 *   close(): void,
 * }} VigilClient
 */

/** An `error` frame answering a request (or sent unasked, like `rate_limited`), or a timeout. */
export class VigilError extends Error {
  /**
   * @param {string} code the protocol's error code, or `timeout` / `disconnected` / `closed`
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'VigilError';
    this.code = code;
  }
}

const OPEN = 1;
/** The most ids the hub takes in one `subscribe_devices`. */
const MAX_IDS_PER_REQUEST = 500;
/** And the size of one such request: half the hub's default WS_MAX_FRAME_BYTES (16 KiB), with room for the rest. */
const MAX_BATCH_BYTES = 8 * 1024;

/**
 * Close codes after which reconnecting would only be refused again: credentials the hub refused
 * (4401: invalid, or none where one is needed; 4403: forbidden; 4410: the key was revoked) and too
 * many refused subscriptions (4009: a reconnect re-sends the same ones). The client stops with
 * status `closed` and the code, so the page can ask for a key. Every other close (1001 shutdown,
 * 1006, 1011, 4008 slow consumer, 4029 rate, 4440 token expired: a fresh one is fetched) is retried.
 */
export const TERMINAL_CLOSE_CODES = new Set([4009, 4401, 4403, 4410]);

/**
 * The token of a grant (a string, or `POST /ws-token`'s answer), null for none.
 * @param {unknown} grant
 * @returns {{ token: string, expiresAt: number | null } | null}
 */
function readGrant(grant) {
  if (grant === null || grant === undefined) return null;
  if (typeof grant === 'string') return { token: grant, expiresAt: null };
  const { token, expires_at: expires } = /** @type {{ token?: unknown, expires_at?: unknown }} */ (grant);
  // A malformed answer is not a refusal: retried like an unreachable token endpoint.
  if (typeof token !== 'string') throw new VigilError('token_unavailable', 'the token function returned no token');
  const expiresAt = typeof expires === 'string' ? Date.parse(expires) : NaN;
  return { token, expiresAt: Number.isFinite(expiresAt) ? expiresAt : null };
}

/**
 * @typedef {{ handlers: Set<(frame: VigilFrame) => void>, seq: number, epoch: string | null }} DeviceFollow
 * @typedef {{ resolve: (frame: VigilFrame) => void, reject: (error: VigilError) => void, timer: ReturnType<typeof setTimeout>, onAck: ((frame: VigilFrame) => void) | null }} Pending
 */

/**
 * @param {VigilClientOptions} options
 * @returns {VigilClient}
 */
export function createVigilClient(options) {
  const Socket = options.WebSocket ?? /** @type {WebSocketConstructor | undefined} */ (/** @type {Record<string, unknown>} */ (globalThis).WebSocket);
  if (Socket === undefined) throw new TypeError('no WebSocket: pass options.WebSocket');
  const minMs = Math.max(1, options.reconnect?.minMs ?? 500);
  const maxMs = Math.max(minMs, options.reconnect?.maxMs ?? 30_000);
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  // A ws-token renewed on the open connection (an `auth` with a fresh one) keeps the session past
  // its expiry (4440) without a reconnect: every renewMs when given (below WS_TOKEN_TTL_S), else at
  // half the remaining lifetime of a grant that names its `expires_at`.
  const renewMs = typeof options.token === 'function' && options.renewMs !== undefined ? Math.max(1000, options.renewMs) : null;
  // The token on the upgrade URL rather than in a first `auth`: the socket is authenticated from its
  // start (not held against WS_MAX_UNAUTHENTICATED or WS_AUTH_TIMEOUT_S). A token the hub refuses
  // there is an HTTP 401 the browser reports as 1006: retried, and the next token fetch tells.
  const tokenInUrl = options.tokenInUrl === true && options.token !== undefined;

  /** @type {Map<string, DeviceFollow>} */
  const devices = new Map();
  /** @type {{ handlers: Set<(frame: VigilFrame) => void>, summaries: boolean, fleetSeq: number | null, epoch: string | null }} */
  const fleet = { handlers: new Set(), summaries: false, fleetSeq: null, epoch: null };
  /** @type {Map<number, Pending>} */
  const pending = new Map();
  /**
   * Requests made before the connection is open (or while it reconnects), waiting for it: each is
   * sent once the socket is authenticated and subscribed, or rejected at its deadline.
   * @type {Set<{ resolve: (ws: WebSocketLike) => void, reject: (error: VigilError) => void, timer: ReturnType<typeof setTimeout> }>}
   */
  const waiting = new Set();
  /** @type {Set<(error: VigilError) => void>} */
  const errorListeners = new Set();
  /** @type {Set<(status: VigilStatus, detail: VigilStatusDetail | null) => void>} */
  const statusListeners = new Set();
  /** @type {VigilStatus} */
  let status = 'connecting';
  /** @type {VigilStatusDetail | null} */
  let statusDetail = null;
  /** @type {WebSocketLike | null} */
  let socket = null;
  /** True once authenticated and subscribed on the current socket: requests go out directly. */
  let ready = false;
  let attempt = 0;
  let nextId = 1;
  let closed = false;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let retryTimer = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let renewTimer = null;
  const stopRenewing = () => {
    if (renewTimer !== null) clearTimeout(renewTimer);
    renewTimer = null;
  };

  /**
   * A status with a detail is always told (another wait before the next attempt); without one,
   * only a change.
   * @param {VigilStatus} next @param {VigilStatusDetail | null} [detail]
   */
  const setStatus = (next, detail = null) => {
    if (status === next && detail === null) return;
    status = next;
    statusDetail = detail;
    for (const fn of statusListeners) fn(next, detail);
  };

  /**
   * Stops for good: no reconnect, pending requests rejected, status `closed` with why.
   * @param {VigilStatusDetail} detail
   */
  const stop = (detail) => {
    closed = true;
    if (retryTimer !== null) clearTimeout(retryTimer);
    retryTimer = null;
    stopRenewing();
    rejectAll('closed', `the client stopped: ${detail.reason}`);
    for (const w of waiting) {
      clearTimeout(w.timer);
      w.reject(new VigilError('closed', `the client stopped: ${detail.reason}`));
    }
    waiting.clear();
    const ws = socket;
    socket = null;
    ready = false;
    setStatus('closed', detail);
    if (ws !== null && ws.readyState <= OPEN) ws.close(1000, 'client closed');
  };

  /** @param {VigilError} error */
  const reportError = (error) => {
    for (const fn of errorListeners) fn(error);
  };

  /**
   * Sends a request with a fresh id; resolves with its ack (or pong), rejects with its error frame.
   * @param {WebSocketLike} ws
   * @param {Record<string, unknown>} message
   * @param {((frame: VigilFrame) => void) | null} [onAck] run as the ack arrives, before any frame after it
   * @param {number} [timeoutMs] how long to wait for the answer (what is left of a request's time)
   * @returns {Promise<VigilFrame>}
   */
  const request = (ws, message, onAck = null, timeoutMs = requestTimeoutMs) => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new VigilError('timeout', `no answer to ${String(message.type)} within ${requestTimeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer, onAck });
      ws.send(JSON.stringify({ ...message, id }));
    });
  };

  /**
   * The open socket, at once when there is one, else once the connection is open (authenticated and
   * subscribed), so a request made before that (a page's first lines) is sent then instead of
   * failing; rejected with `timeout` past the deadline, `closed` when the client stops.
   * @param {string} what the request, for the timeout's message
   * @param {number} deadline Date.now() by which it must be sent
   * @returns {Promise<WebSocketLike>}
   */
  const whenOpen = (what, deadline) => {
    if (closed) return Promise.reject(new VigilError('closed', 'the client was closed'));
    if (ready && socket !== null && socket.readyState === OPEN) return Promise.resolve(socket);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          waiting.delete(waiter);
          reject(new VigilError('timeout', `not connected within ${requestTimeoutMs} ms: ${what} was not sent`));
        }, Math.max(0, deadline - Date.now())),
      };
      waiting.add(waiter);
    });
  };

  /** Sends the requests that waited for the connection, in the order they were made. @param {WebSocketLike} ws */
  const releaseWaiting = (ws) => {
    const released = [...waiting];
    waiting.clear();
    for (const w of released) {
      clearTimeout(w.timer);
      w.resolve(ws);
    }
  };

  /** @param {string} code @param {string} message */
  const rejectAll = (code, message) => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(new VigilError(code, message));
    }
  };

  /**
   * The next attempt after an exponential backoff with jitter (half of the step fixed, half random).
   * @param {number} code @param {string} reason why the last attempt ended
   */
  const retryLater = (code, reason) => {
    const step = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
    attempt++;
    const wait = step / 2 + Math.random() * (step / 2);
    setStatus('reconnecting', { code, reason, retryInMs: Math.round(wait) });
    retryTimer = setTimeout(connect, wait);
  };

  /** A failed setup: refused credentials (the hub's answer to `auth`, or the token function's) stop for good. */
  const setupFailed = (/** @type {unknown} */ error) => {
    const failure = error instanceof VigilError ? error : new VigilError('internal', String(error));
    reportError(failure);
    return failure.code === 'invalid_token' ? (stop({ code: 4401, reason: failure.message }), null) : failure;
  };

  const connect = () => {
    retryTimer = null;
    if (closed) return;
    setStatus(attempt === 0 ? 'connecting' : 'reconnecting');
    if (!tokenInUrl) return openSocket(options.url, undefined);
    // The token on the upgrade (`?token=`): fetched first, so the socket is authenticated from its start.
    const token = options.token;
    (typeof token === 'function' ? fetchGrant(token) : Promise.resolve(token ?? null))
      .then(readGrant)
      .then(
        (grant) => {
          if (closed) return;
          const url = grant === null ? options.url : `${options.url}${options.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(grant.token)}`;
          openSocket(url, grant);
        },
        (/** @type {unknown} */ error) => {
          if (closed) return;
          const failure = setupFailed(error);
          if (failure !== null) retryLater(4000, failure.message);
        },
      );
  };

  /**
   * @param {string} url
   * @param {{ token: string, expiresAt: number | null } | null | undefined} grant the token sent on the
   *   upgrade (null: none needed), or undefined when it goes in an `auth` request
   */
  const openSocket = (url, grant) => {
    const ws = new Socket(url);
    socket = ws;
    ready = false;
    ws.onopen = () => {
      setup(ws, grant).catch((/** @type {unknown} */ error) => {
        if (socket !== ws) return;
        if (setupFailed(error) !== null) ws.close(4000, 'setup failed'); // onclose schedules the next attempt
      });
    };
    ws.onmessage = (event) => {
      if (socket === ws && typeof event.data === 'string') receive(event.data);
    };
    ws.onerror = () => undefined; // onclose follows and retries
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      ready = false;
      stopRenewing();
      rejectAll('disconnected', 'the connection closed before the hub answered');
      const code = typeof event?.code === 'number' ? event.code : 1006;
      const reason = typeof event?.reason === 'string' ? event.reason : '';
      if (closed) return;
      if (TERMINAL_CLOSE_CODES.has(code)) return stop({ code, reason });
      retryLater(code, reason);
    };
  };

  /**
   * Authenticates (when a token is given and did not go on the upgrade), then subscribes to
   * everything followed, resuming where it can.
   * @param {WebSocketLike} ws
   * @param {{ token: string, expiresAt: number | null } | null | undefined} onUpgrade
   */
  const setup = async (ws, onUpgrade) => {
    if (onUpgrade !== undefined) {
      if (onUpgrade !== null) scheduleRenewal(ws, onUpgrade.expiresAt);
    } else if (options.token !== undefined) {
      const grant = readGrant(typeof options.token === 'function' ? await fetchGrant(options.token) : options.token);
      if (socket !== ws) return;
      if (grant !== null) {
        await request(ws, { type: 'auth', token: grant.token });
        scheduleRenewal(ws, grant.expiresAt);
      }
    }
    const subscriptions = [subscribeManyOn(ws, [...devices.keys()])];
    if (fleet.handlers.size > 0) subscriptions.push(subscribeFleetOn(ws));
    ready = true;
    attempt = 0;
    setStatus('open');
    releaseWaiting(ws);
    await Promise.all(subscriptions);
  };

  /**
   * Calls the token function; a failure that is not a VigilError (the network, a 5xx) is retried.
   * @param {() => Promise<VigilTokenGrant>} fetchToken
   */
  const fetchGrant = (fetchToken) =>
    fetchToken().catch((/** @type {unknown} */ error) => {
      throw error instanceof VigilError ? error : new VigilError('token_unavailable', error instanceof Error ? error.message : String(error));
    });

  /**
   * Sends a fresh token on the open connection before the current one expires (see renewMs).
   * @param {WebSocketLike} ws @param {number | null} expiresAt
   */
  const scheduleRenewal = (ws, expiresAt) => {
    stopRenewing();
    const fetchToken = options.token;
    if (typeof fetchToken !== 'function') return;
    const delay = renewMs ?? (expiresAt === null ? null : Math.max(1000, (expiresAt - Date.now()) / 2));
    if (delay === null) return; // a token without an expiry: none to renew
    renewTimer = setTimeout(() => {
      renewTimer = null;
      fetchGrant(fetchToken)
        .then(async (fresh) => {
          const grant = readGrant(fresh);
          if (socket !== ws || grant === null) return;
          await request(ws, { type: 'auth', token: grant.token });
          if (socket === ws) scheduleRenewal(ws, grant.expiresAt);
        })
        .catch((/** @type {unknown} */ error) => {
          const failure = error instanceof VigilError ? error : new VigilError('internal', String(error));
          if (socket !== ws || failure.code === 'disconnected') return;
          reportError(failure);
          if (failure.code === 'invalid_token') return stop({ code: 4401, reason: failure.message });
          // Not renewed (the token endpoint did not answer): tried again at half the time left (at
          // least 1 s apart); if it never answers, the session ends with 4440 and is reconnected.
          scheduleRenewal(ws, expiresAt);
        });
    }, delay);
  };

  /**
   * Every followed device at once (a reconnect, or what was followed before the socket was ready):
   * `subscribe_devices` with the resume points, up to 500 ids and about 8 KiB a request, so following
   * many devices never trips the hub's rate limit (4029, and again on every reconnect) nor its frame
   * limit.
   * @param {WebSocketLike} ws @param {string[]} ids
   * @returns {Promise<void>}
   */
  const subscribeManyOn = async (ws, ids) => {
    const batches = [];
    /** @type {string[]} */
    let batch = [];
    let bytes = 0;
    for (const id of ids) {
      // What the id adds to the request's JSON: in device_ids, and with its resume point.
      const follow = devices.get(id);
      const cost = 2 * (id.length + 3) + (follow?.epoch ? follow.epoch.length + 40 : 0);
      if (batch.length > 0 && (batch.length === MAX_IDS_PER_REQUEST || bytes + cost > MAX_BATCH_BYTES)) {
        batches.push(subscribeBatchOn(ws, batch));
        batch = [];
        bytes = 0;
      }
      batch.push(id);
      bytes += cost;
    }
    if (batch.length > 0) batches.push(subscribeBatchOn(ws, batch));
    await Promise.all(batches);
  };

  /** @param {WebSocketLike} ws @param {string[]} ids */
  const subscribeBatchOn = async (ws, ids) => {
    if (ids.length === 1) return subscribeDeviceOn(ws, /** @type {string} */ (ids[0]));
    /** @type {Record<string, { since_seq: number, epoch: string }>} */
    const resume = Object.create(null); // ids are keys: `__proto__` is a valid device id
    let resuming = false;
    for (const id of ids) {
      const follow = devices.get(id);
      if (follow !== undefined && follow.epoch !== null) {
        resume[id] = { since_seq: follow.seq, epoch: follow.epoch };
        resuming = true;
      }
    }
    try {
      await request(ws, { type: 'subscribe_devices', device_ids: ids, ...(resuming ? { resume } : {}) });
    } catch (error) {
      const failure = /** @type {VigilError} */ (error);
      // A hub without subscribe_devices, or one id the key may not read refusing them all: one
      // request each, so the others are followed and each refusal is told.
      if ((failure.code === 'unknown_type' || failure.code === 'forbidden') && socket === ws) {
        await Promise.all(ids.map((id) => subscribeDeviceOn(ws, id)));
      } else if (failure.code !== 'disconnected') reportError(failure);
    }
  };

  /** @param {WebSocketLike} ws @param {string} id */
  const subscribeDeviceOn = (ws, id) => {
    const follow = devices.get(id);
    if (follow === undefined) return Promise.resolve();
    /** @type {Record<string, unknown>} */
    const message = { type: 'subscribe_device', device_id: id };
    if (follow.epoch !== null) Object.assign(message, { since_seq: follow.seq, epoch: follow.epoch });
    return request(ws, message).then(
      () => undefined,
      (/** @type {VigilError} */ error) => reportError(error),
    );
  };

  /** @param {WebSocketLike} ws */
  const subscribeFleetOn = (ws) => {
    /** @type {Record<string, unknown>} */
    const message = { type: 'subscribe_all' };
    if (fleet.summaries) message.summaries = true;
    // Feature detection: only a hub whose ack carried fleet_seq and epoch is asked to resume.
    if (fleet.fleetSeq !== null && fleet.epoch !== null) Object.assign(message, { since_fleet_seq: fleet.fleetSeq, epoch: fleet.epoch });
    // Handled as the ack arrives: the frames after it are judged by the fleet_seq it names.
    const onAck = (/** @type {VigilFrame} */ ack) => {
      const resumed = ack.recovered === true && ack.epoch === fleet.epoch;
      if (typeof ack.epoch === 'string') fleet.epoch = ack.epoch;
      if (typeof ack.fleet_seq === 'number' && !resumed) fleet.fleetSeq = ack.fleet_seq;
      for (const fn of fleet.handlers) fn(ack); // `recovered: false`: what was missed is gone; summaries follow
    };
    return request(ws, message, onAck).then(
      () => undefined,
      (/** @type {VigilError} */ error) => reportError(error),
    );
  };

  /** @param {string} text */
  const receive = (text) => {
    /** @type {VigilFrame} */
    let frame;
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || typeof parsed.type !== 'string') return;
      frame = parsed;
    } catch {
      return;
    }
    const id = frame.id;
    if ((frame.type === 'ack' || frame.type === 'error' || frame.type === 'pong') && typeof id === 'number' && pending.has(id)) {
      const p = /** @type {Pending} */ (pending.get(id));
      pending.delete(id);
      clearTimeout(p.timer);
      if (frame.type === 'error') {
        const error = /** @type {{ code?: unknown, message?: unknown } | undefined} */ (frame.error);
        p.reject(new VigilError(String(error?.code ?? 'unknown'), String(error?.message ?? 'error')));
      } else {
        if (p.onAck !== null && frame.type === 'ack') p.onAck(frame);
        p.resolve(frame);
      }
      return;
    }
    if (frame.type === 'error') {
      const error = /** @type {{ code?: unknown, message?: unknown } | undefined} */ (frame.error);
      return reportError(new VigilError(String(error?.code ?? 'unknown'), String(error?.message ?? 'error')));
    }
    if (frame.type === 'ack' || frame.type === 'pong') return;
    deliver(frame);
  };

  /** @param {VigilFrame} frame */
  const deliver = (frame) => {
    const deviceId = typeof frame.device_id === 'string' ? frame.device_id : null;
    const follow = deviceId === null ? undefined : devices.get(deviceId);
    if (follow !== undefined) {
      if (frame.type === 'snapshot') {
        follow.seq = typeof frame.seq === 'number' ? frame.seq : 0;
        follow.epoch = typeof frame.epoch === 'string' ? frame.epoch : null;
        for (const fn of follow.handlers) fn(frame);
      } else if (typeof frame.seq === 'number' && frame.seq > 0 && frame.seq <= follow.seq) {
        // Already handed over (a resume overlapping the live stream): dropped.
      } else {
        if (typeof frame.seq === 'number' && frame.seq > 0) follow.seq = frame.seq;
        for (const fn of follow.handlers) fn(frame);
      }
    }
    if (fleet.handlers.size === 0 || frame.type === 'snapshot' || frame.type === 'device_update' || frame.type === 'command_update') return;
    if (typeof frame.fleet_seq === 'number') {
      if (fleet.fleetSeq !== null && frame.fleet_seq <= fleet.fleetSeq) return;
      fleet.fleetSeq = frame.fleet_seq;
    }
    for (const fn of fleet.handlers) fn(frame);
  };

  /** @param {Record<string, unknown>} message */
  const sendIfReady = (message) => {
    if (ready && socket !== null && socket.readyState === OPEN) {
      request(socket, message).catch((/** @type {VigilError} */ error) => error.code !== 'disconnected' && reportError(error));
    }
  };

  connect();

  return {
    get status() {
      return status;
    },
    get statusDetail() {
      return statusDetail;
    },
    subscribeDevice(id, onFrame) {
      let follow = devices.get(id);
      if (follow === undefined) {
        follow = { handlers: new Set(), seq: 0, epoch: null };
        devices.set(id, follow);
        follow.handlers.add(onFrame);
        if (ready && socket !== null) subscribeDeviceOn(socket, id);
      } else follow.handlers.add(onFrame);
      const handlers = follow.handlers;
      return () => {
        if (!handlers.delete(onFrame) || handlers.size > 0 || devices.get(id)?.handlers !== handlers) return;
        devices.delete(id);
        sendIfReady({ type: 'unsubscribe_device', device_id: id });
      };
    },
    subscribeFleet(fleetOptions, onFrame) {
      const first = fleet.handlers.size === 0;
      const wantsSummaries = fleetOptions.summaries === true && !fleet.summaries;
      fleet.handlers.add(onFrame);
      if (wantsSummaries) fleet.summaries = true;
      // The hub answers a repeated subscribe_all with an ack; with summaries it starts them.
      if ((first || wantsSummaries) && ready && socket !== null) subscribeFleetOn(socket);
      return () => {
        if (!fleet.handlers.delete(onFrame) || fleet.handlers.size > 0) return;
        fleet.summaries = false;
        fleet.fleetSeq = null;
        fleet.epoch = null;
        sendIfReady({ type: 'unsubscribe_all' });
      };
    },
    async ackAlert(alertId) {
      // Made before the connection is open (or while it reconnects): sent once it is, all within requestTimeoutMs.
      const deadline = Date.now() + requestTimeoutMs;
      for (;;) {
        // Open: sent at once (in this turn); else once it is.
        const ws = ready && socket !== null && socket.readyState === OPEN ? socket : await whenOpen('ack_alert', deadline);
        // The connection may have closed between its opening and this turn: wait for the next one.
        if (ws === socket && ready) return void (await request(ws, { type: 'ack_alert', alert_id: alertId }, null, Math.max(0, deadline - Date.now())));
      }
    },
    onStatus(fn) {
      statusListeners.add(fn);
      return () => void statusListeners.delete(fn);
    },
    onError(fn) {
      errorListeners.add(fn);
      return () => void errorListeners.delete(fn);
    },
    close() {
      if (!closed) stop({ code: 1000, reason: 'client closed' });
    },
  };
}
