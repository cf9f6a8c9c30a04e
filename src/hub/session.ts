import { InternalFault, type Faults } from '../errors/boundary.js';
import type { Metrics } from '../metrics.js';
import type { Credentials, Principal } from '../security/api-keys.js';
import { ALL_CHANNEL } from './hub.js';
import type { LagFollower, LagRouter } from './lag-router.js';
import { CloseCode, decodeClientMessage, encodeError, type ErrorCode, type RequestId } from './protocol.js';
import { checkCredentials, waitForVerification } from './session-auth.js';
import { dispatch } from './session-dispatch.js';
import type { SessionHub } from './session-hub.js';
import { catchUp, conflate, dropPending, enterLag } from './session-lag.js';
import { sharedTopic } from './topics.js';

export { WS_POLICY } from './session-dispatch.js';

/** What a session needs of its connection; the uWS adapter implements it (transport apart from protocol). */
export interface ClientSocket {
  send(frame: string): void;
  subscribe(channel: string): void;
  unsubscribe(channel: string): void;
  bufferedAmount(): number;
  cork(fn: () => void): void;
  close(code: number, reason: string): void;
}

export interface SessionLimits {
  readonly maxFrameBytes: number;
  readonly maxSubscriptions: number;
  readonly maxMessagesPerSecond: number;
  /** Buffered bytes above which a client counts as lagging and its updates are conflated. */
  readonly lagBytes: number;
  /** How long a client may stay lagging before it is closed as a slow consumer. */
  readonly slowDeadlineMs: number;
}

/** What every session of one WebSocket endpoint shares: one object, so a session holds one reference to all of it. */
export interface SessionContext {
  readonly hub: SessionHub;
  readonly lag: LagRouter;
  readonly limits: SessionLimits;
  readonly metrics: Metrics;
  readonly faults: Faults;
}

/** How a session checks an `auth` message's token (an API key, a ws-token, or a JWT: verified asynchronously). */
export type Authenticate = (token: string) => Credentials | null | Promise<Credentials | null>;

/**
 * One WebSocket client: its requests, subscriptions and, while it lags, the newest pending frame
 * per (channel, kind). The work is in files by responsibility: session-dispatch.ts (the policy and
 * the message types), session-auth.ts, session-lag.ts, held-frames.ts, and the subscription
 * handlers (device-subscriptions.ts, device-list.ts, fleet-subscription.ts), which read and write
 * the state below that is not marked private. Fields, not sub-objects: an idle connection stays
 * one small object (docs/performance.md, heap per idle connection).
 */
export class Session implements LagFollower {
  readonly devices = new Set<string>();
  all = false;
  /** Following `fleet_summary` frames (with `*`: `subscribe_all` with `summaries`). */
  summaries = false;
  lagging = false;
  lagSince = 0;
  /** The newest frame per (channel, kind) while lagging; allocated when the client first lags (most never do). */
  pending: Map<string, string> | null = null;
  /** Channels (devices, `*`) whose first frames are on their way (another instance, Redis): live frames wait here (held-frames.ts). */
  preparing: Map<string, string[]> | null = null;
  /**
   * Following `*` while devices' first frames are fetched (a cluster): `*` leaves its uWS topic and
   * its frames wait here with those devices' (channel, key, frame), in arrival order, so none of a
   * device's frames overtakes its snapshot and `*` keeps its fleet_seq order (held-frames.ts).
   */
  fleetQueue: string[] | null = null;
  /** The devices whose frames wait in `fleetQueue`: null while fetching, then the seq their first frames end at. */
  queuedDevices: Map<string, number | null> | null = null;
  refusedSubscriptions = 0;
  closed = false;
  principal: Principal | null;
  /** When the ws-token or JWT this session authenticated with expires (null: an API key, or none). */
  expiresAt: number | null;
  /** Set while an `auth` message's JWT is verified: the messages that came after it, in order. */
  awaitingAuth: string[] | null = null;
  private windowStart = 0;
  private windowCount = 0;

  constructor(
    readonly connectionId: string,
    readonly socket: ClientSocket,
    private readonly context: SessionContext,
    /** Null until the client authenticates (when the hub requires it). */
    credentials: Credentials | null,
    readonly authenticate: Authenticate,
  ) {
    this.principal = credentials?.principal ?? null;
    this.expiresAt = credentials?.expiresAt ?? null;
  }

  get hub(): SessionHub {
    return this.context.hub;
  }
  get lag(): LagRouter {
    return this.context.lag;
  }
  get limits(): SessionLimits {
    return this.context.limits;
  }
  get metrics(): Metrics {
    return this.context.metrics;
  }
  get faults(): Faults {
    return this.context.faults;
  }

  get subscriptionCount(): number {
    return this.devices.size + (this.all || this.preparing?.has(ALL_CHANNEL) === true ? 1 : 0);
  }

  onText(text: string, now: number): void {
    if (!this.withinRate(now)) return;
    const waiting = this.awaitingAuth;
    if (waiting !== null) return waitForVerification(this, waiting, text);
    this.handleText(text);
  }

  onBinary(now: number): void {
    if (!this.withinRate(now)) return;
    this.sendError(null, 'binary_not_supported', 'send JSON text frames');
  }

  /** Decodes and handles one client message (also those that waited for an `auth`). */
  handleText(text: string): void {
    const decoded = decodeClientMessage(text, this.limits.maxFrameBytes);
    if (!decoded.ok) {
      this.sendError(decoded.error.id, decoded.error.code, decoded.error.message);
      return;
    }
    // The boundary of a client message: a fault while handling it is answered `internal` (no
    // details), reported, and the connection goes on.
    try {
      dispatch(this, decoded.message);
    } catch (error) {
      this.internalError(decoded.message.id, error, decoded.message.type);
    }
  }

  /** A fault while handling one of this client's requests (caught here or by the socket's handlers). */
  internalError(id: RequestId, error: unknown, type?: string): void {
    this.faults.report('ws', error, { conn: this.connectionId, ...(type === undefined ? {} : { type }) });
    if (!this.closed) this.sendError(id, 'internal', 'internal error; the request was not completed');
  }

  /**
   * A request whose work failed later (the cluster, Redis): `internal` when the instance that did the
   * work failed, `unavailable` (retry) when a dependency did not answer; both reported.
   */
  failedLater(id: RequestId, error: unknown, type: string, unavailable: string): void {
    if (error instanceof InternalFault) return this.internalError(id, error, type);
    this.faults.report('ws', error, { conn: this.connectionId, type });
    if (!this.closed) this.sendError(id, 'unavailable', unavailable);
  }

  /** See session-auth.ts. */
  checkCredentials(now: number, valid: (keyId: string) => boolean, anonymousAllowed: boolean): void {
    checkCredentials(this, now, valid, anonymousAllowed);
  }

  /** Closes a client that did not authenticate in time. */
  closeUnauthenticated(): void {
    if (this.principal === null) this.close(CloseCode.unauthenticated, 'authentication timeout');
  }

  /** Stops `fleet_summary` frames (with `unsubscribe_all`, or as the connection closes). */
  leaveSummaries(open: boolean): void {
    if (!this.summaries) return;
    this.summaries = false;
    this.hub.summaries.leave(this.socket, open);
  }

  /** Called by the lag router for a lagging or preparing session with every frame of a channel it follows (session-lag.ts). */
  conflate(channel: string, key: string, frame: string): void {
    conflate(this, channel, key, frame);
  }

  /** The client's buffer grew past the lag threshold (session-lag.ts). */
  enterLag(now: number): void {
    enterLag(this, now);
  }

  /** The socket drained or the lag monitor looked; false when the client was closed as stuck (session-lag.ts). */
  catchUp(now: number): boolean {
    return catchUp(this, now);
  }

  dropPending(channel: string): void {
    dropPending(this, channel);
  }

  /** The device's uWS topics for this connection (see topics.ts). */
  joinTopics(deviceId: string): void {
    this.socket.subscribe(deviceId);
    if (!this.all) this.socket.subscribe(sharedTopic(deviceId));
  }

  leaveTopics(deviceId: string): void {
    this.socket.unsubscribe(deviceId);
    this.socket.unsubscribe(sharedTopic(deviceId));
  }

  /** Followed devices whose frames come through uWS topics when not lagging (not those still preparing). */
  *topicDevices(): Iterable<string> {
    for (const deviceId of this.devices) if (this.preparing?.has(deviceId) !== true && this.queuedDevices?.has(deviceId) !== true) yield deviceId;
  }

  /** The socket is gone (closed by either side): release everything it held. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.metrics.wsSubscriptions.dec(this.subscriptionCount);
    for (const deviceId of this.devices) this.hub.unfollow(deviceId);
    const fleet = this.all || this.preparing?.has(ALL_CHANNEL) === true;
    if (fleet) this.hub.unfollow(ALL_CHANNEL);
    this.leaveSummaries(false);
    if (this.lagging || (this.preparing?.size ?? 0) > 0 || this.fleetQueue !== null) {
      for (const deviceId of this.devices) this.lag.unfollow(deviceId, this);
      if (fleet) this.lag.unfollow(ALL_CHANNEL, this);
    }
    if (this.lagging) this.metrics.wsLaggingClients.dec();
    this.preparing?.clear();
    this.fleetQueue = null;
    this.queuedDevices = null;
    this.devices.clear();
    this.pending?.clear();
  }

  /** WS_MAX_MESSAGES_PER_SECOND: one error at the first message past it, closed at twice as many. */
  private withinRate(now: number): boolean {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.windowCount = 0;
    }
    const count = ++this.windowCount;
    const max = this.limits.maxMessagesPerSecond;
    if (count <= max) return true;
    if (count === max + 1) this.sendError(null, 'rate_limited', `at most ${max} messages per second; extra messages are ignored`);
    else if (count > 2 * max) this.close(CloseCode.rateLimited, 'rate limit');
    return false;
  }

  sendError(id: RequestId, code: ErrorCode, message: string): void {
    this.metrics.wsClientErrors.inc({ code });
    this.socket.send(encodeError({ id, code, message }));
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.metrics.wsCloses.inc({ reason });
    this.socket.close(code, reason);
  }
}
