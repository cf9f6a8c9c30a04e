import { InternalFault, type Faults } from '../errors/boundary.js';
import type { Metrics } from '../metrics.js';
import type { Credentials, Principal } from '../security/api-keys.js';
import { authorize, type Action } from '../security/policy.js';
import { subscribeDevice, unsubscribeDevice } from './device-subscriptions.js';
import { subscribeDevices, unsubscribeDevices } from './device-list.js';
import { subscribeAll, unsubscribeAll } from './fleet-subscription.js';
import { ALL_CHANNEL, type Hub } from './hub.js';
import type { LagRouter } from './lag-router.js';
import { alsoOnAll, sharedTopic } from './topics.js';
import { CloseCode, decodeClientMessage, encodeAck, encodeError, encodePong, type ClientMessage, type ErrorCode, type RequestId } from './protocol.js';

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

/**
 * The policy entry of every client message: the action it takes and where its device is (`message`:
 * its device_id; `handler`: found by the handler, as an alert's device), or null for messages that
 * touch only the session itself. A new message type without an entry does not compile.
 */
export const WS_POLICY: { readonly [T in ClientMessage['type']]: { readonly action: Action; readonly device: 'message' | 'none' | 'handler' } | null } = {
  subscribe_device: { action: 'device.read', device: 'message' },
  unsubscribe_device: null,
  // Each listed id is authorized by the handler (device-list.ts): one refused id refuses the request.
  subscribe_devices: { action: 'device.read', device: 'handler' },
  unsubscribe_devices: null,
  subscribe_all: { action: 'fleet.feed', device: 'none' },
  unsubscribe_all: null,
  ping: null,
  ack_alert: { action: 'alert.ack', device: 'handler' },
  auth: null,
};

/** Messages held while a JWT of an `auth` message is verified (more get `rate_limited`). */
const MAX_WAITING_FOR_AUTH = 64;
/** Frames held for one channel while its snapshot or missed frames are fetched. */
const MAX_HELD_FRAMES = 10_000;

/**
 * One WebSocket client: its requests, subscriptions and, while it lags, the newest pending frame
 * per (channel, kind). A lagging client is taken off the uWS topics so the fast path never waits
 * for it; its frames are conflated here and delivered on drain, then it rejoins the topics within
 * the same tick so nothing falls between.
 */
export class Session {
  readonly devices = new Set<string>();
  all = false;
  /** Following `fleet_summary` frames (with `*`: `subscribe_all` with `summaries`). */
  summaries = false;
  lagging = false;
  lagSince = 0;
  /** Allocated when the client first lags (most never do: idle connections stay small). */
  private pending: Map<string, string> | null = null;
  /**
   * Channels (devices, `*`) whose first frames are on their way (another instance, Redis): live
   * frames wait here. Read and written by the subscription handlers (device-subscriptions.ts,
   * device-list.ts, fleet-subscription.ts), like the members below not marked private.
   */
  preparing: Map<string, string[]> | null = null;
  private windowStart = 0;
  private windowCount = 0;
  refusedSubscriptions = 0;
  closed = false;

  constructor(
    readonly connectionId: string,
    readonly socket: ClientSocket,
    readonly hub: Hub,
    readonly lag: LagRouter,
    readonly limits: SessionLimits,
    readonly metrics: Metrics,
    /** Null until the client authenticates (when the hub requires it). */
    credentials: Credentials | null,
    private readonly authenticate: (token: string) => Credentials | null | Promise<Credentials | null>,
    readonly faults: Faults,
  ) {
    this.principal = credentials?.principal ?? null;
    this.expiresAt = credentials?.expiresAt ?? null;
  }

  principal: Principal | null;
  /** When the ws-token or JWT this session authenticated with expires (null: an API key, or none). */
  private expiresAt: number | null;
  /** Set while an `auth` message's JWT is verified: the messages that came after it, in order. */
  private awaitingAuth: string[] | null = null;

  get subscriptionCount(): number {
    return this.devices.size + (this.all || this.preparing?.has(ALL_CHANNEL) === true ? 1 : 0);
  }

  onText(text: string, now: number): void {
    if (!this.withinRate(now)) return;
    // Messages after an `auth` whose JWT is being verified wait for it, in order (bounded).
    if (this.awaitingAuth !== null) {
      if (this.awaitingAuth.length < MAX_WAITING_FOR_AUTH) this.awaitingAuth.push(text);
      else this.sendError(null, 'rate_limited', `at most ${MAX_WAITING_FOR_AUTH} messages may wait while a token is verified`);
      return;
    }
    this.handleText(text);
  }

  private handleText(text: string): void {
    const decoded = decodeClientMessage(text, this.limits.maxFrameBytes);
    if (!decoded.ok) {
      this.sendError(decoded.error.id, decoded.error.code, decoded.error.message);
      return;
    }
    // The boundary of a client message: a fault while handling it is answered `internal` (no
    // details), reported, and the connection goes on.
    try {
      this.handle(decoded.message);
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

  onBinary(now: number): void {
    if (!this.withinRate(now)) return;
    this.sendError(null, 'binary_not_supported', 'send JSON text frames');
  }

  private handle(message: ClientMessage): void {
    if (message.type === 'auth') return this.authenticateWith(message.token, message.id);
    const principal = this.principal;
    if (principal === null) {
      if (message.type !== 'ping') this.sendError(message.id, 'unauthenticated', 'send {"type":"auth","token":…} first');
      else this.socket.send(encodePong(message.id));
      return;
    }
    const rule = WS_POLICY[message.type];
    if (rule !== null) {
      const decision = authorize(principal, rule.action, rule.device === 'message' && 'deviceId' in message ? message.deviceId : null);
      if (!decision.ok) return this.sendError(message.id, 'forbidden', decision.message);
    }
    switch (message.type) {
      case 'subscribe_device':
        return subscribeDevice(this, message.deviceId, message.id, message.resume);
      case 'unsubscribe_device':
        return unsubscribeDevice(this, message.deviceId, message.id);
      case 'subscribe_devices':
        return subscribeDevices(this, principal, message.deviceIds, message.resume, message.id);
      case 'unsubscribe_devices':
        return unsubscribeDevices(this, message.deviceIds, message.id);
      case 'subscribe_all':
        return subscribeAll(this, message.id, message.resume, message.summaries);
      case 'unsubscribe_all':
        return unsubscribeAll(this, message.id);
      case 'ping':
        this.socket.send(encodePong(message.id));
        return;
      case 'ack_alert': {
        const { id, alertId } = message;
        this.hub.acknowledgeAlertAnywhere(alertId, `ws:${this.connectionId}`, (deviceId) => authorize(principal, 'alert.ack', deviceId).ok).then(
          (alert) => {
            if (this.closed) return;
            if (alert === null) this.sendError(id, 'alert_not_found', `no active alert ${alertId}`);
            else if (alert === 'forbidden') this.sendError(id, 'forbidden', "this key may not use this alert's device");
            else this.socket.send(encodeAck(id));
          },
          (error: unknown) => this.failedLater(id, error, 'ack_alert', 'could not reach the instance holding this alert; retry'),
        ).catch((error: unknown) => this.internalError(id, error, 'ack_alert'));
        return;
      }
    }
  }

  /** First authentication, or renewal with a fresh ws-token of the same key (which moves the expiry). */
  private authenticateWith(token: string, id: RequestId): void {
    const credentials = this.authenticate(token);
    if (!(credentials instanceof Promise)) return this.applyCredentials(credentials, id);
    this.awaitingAuth = [];
    credentials
      .then(
        (verified) => this.afterVerification(() => this.applyCredentials(verified, id)),
        (error: unknown) => this.afterVerification(() => this.internalError(id, error, 'auth')),
      )
      .catch((error: unknown) => this.internalError(id, error, 'auth'));
  }

  /** Applies a JWT's outcome, then handles the messages that waited for it. */
  private afterVerification(apply: () => void): void {
    const waiting = this.awaitingAuth ?? [];
    this.awaitingAuth = null;
    if (this.closed) return;
    this.socket.cork(() => {
      apply();
      for (const text of waiting) if (!this.closed) this.handleText(text);
    });
  }

  private applyCredentials(credentials: Credentials | null, id: RequestId): void {
    if (credentials === null) {
      this.sendError(id, 'invalid_token', 'invalid API key or token');
      this.close(CloseCode.unauthenticated, 'invalid token');
      return;
    }
    const current = this.principal;
    const next = credentials.principal;
    if (current?.kind === 'key' && (next.kind !== 'key' || next.key.id !== current.key.id)) {
      this.sendError(id, 'forbidden', 'a session keeps the key it authenticated with; open another connection for another key');
      return;
    }
    this.principal = next;
    this.expiresAt = credentials.expiresAt;
    this.socket.send(encodeAck(id));
  }

  /**
   * Ends the session when its key was revoked (`valid` says no), its ws-token expired, or it is
   * anonymous on a hub that now requires keys; called on every key reload and once a second.
   */
  checkCredentials(now: number, valid: (keyId: string) => boolean, anonymousAllowed: boolean): void {
    const principal = this.principal;
    // Opened while the hub needed no key: once one exists, anonymous sessions end too.
    if (principal?.kind === 'anonymous' && !anonymousAllowed) this.close(CloseCode.unauthenticated, 'authentication now required');
    else if (principal?.kind === 'key' && !valid(principal.key.id)) this.close(CloseCode.keyRevoked, 'key revoked');
    else if (this.expiresAt !== null && now >= this.expiresAt) this.close(CloseCode.tokenExpired, 'token expired');
  }

  /** Stops `fleet_summary` frames (with `unsubscribe_all`, or as the connection closes). */
  leaveSummaries(open: boolean): void {
    if (!this.summaries) return;
    this.summaries = false;
    this.hub.summaries.leave(this.socket, open);
  }

  /** Called for a lagging session with every frame of a channel it follows. */
  conflate(channel: string, key: string, frame: string): void {
    // Following `*` too: this frame comes on `*` (see topics.ts).
    if (this.all && channel !== ALL_CHANNEL && alsoOnAll(key)) return;
    const held = this.preparing?.get(channel);
    if (held !== undefined) {
      if (held.length < MAX_HELD_FRAMES) held.push(frame);
      return;
    }
    const pendingKey = `${channel}\u0000${key}`;
    // delete + set moves the key to the end, so pending frames stay in the order of their newest version.
    const pending = (this.pending ??= new Map());
    if (pending.delete(pendingKey)) this.metrics.wsConflated.inc();
    pending.set(pendingKey, frame);
  }

  /** The client's buffer grew past the lag threshold: leave the topics, start conflating. */
  enterLag(now: number): void {
    if (this.lagging || this.closed) return;
    this.lagging = true;
    this.lagSince = now;
    for (const deviceId of this.topicDevices()) {
      this.leaveTopics(deviceId);
      this.lag.follow(deviceId, this);
    }
    if (this.all) {
      this.socket.unsubscribe(ALL_CHANNEL);
      this.lag.follow(ALL_CHANNEL, this);
    }
    if (this.summaries) this.hub.summaries.pause(this.socket); // state: a full snapshot again on catching up
    this.metrics.wsLagEpisodes.inc();
    this.metrics.wsLaggingClients.inc();
  }

  /**
   * The socket drained (or the lag monitor looked): send what is pending and, once the buffer is
   * low, rejoin the topics. Returns false when the client was closed as stuck.
   */
  catchUp(now: number): boolean {
    if (!this.lagging || this.closed) return true;
    if (this.socket.bufferedAmount() > this.limits.lagBytes / 2) {
      if (now - this.lagSince > this.limits.slowDeadlineMs) {
        this.close(CloseCode.slowConsumer, 'slow consumer');
        return false;
      }
      return true;
    }
    this.socket.cork(() => {
      if (this.pending !== null) {
        for (const frame of this.pending.values()) this.socket.send(frame);
        this.pending.clear();
      }
      if (this.socket.bufferedAmount() > this.limits.lagBytes / 2) return;
      this.leaveLag();
    });
    return true;
  }

  private leaveLag(): void {
    this.lagging = false;
    for (const deviceId of this.topicDevices()) {
      this.lag.unfollow(deviceId, this);
      this.joinTopics(deviceId);
    }
    if (this.all) {
      this.lag.unfollow(ALL_CHANNEL, this);
      this.socket.subscribe(ALL_CHANNEL);
    }
    if (this.summaries) this.hub.summaries.resend(this.socket);
    this.metrics.wsLaggingClients.dec();
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
    for (const deviceId of this.devices) if (this.preparing?.has(deviceId) !== true) yield deviceId;
  }

  dropPending(channel: string): void {
    const prefix = `${channel}\u0000`;
    if (this.pending === null) return;
    for (const key of this.pending.keys()) if (key.startsWith(prefix)) this.pending.delete(key);
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
    if (this.lagging || (this.preparing?.size ?? 0) > 0) {
      for (const deviceId of this.devices) this.lag.unfollow(deviceId, this);
      if (fleet) this.lag.unfollow(ALL_CHANNEL, this);
    }
    if (this.lagging) this.metrics.wsLaggingClients.dec();
    this.preparing?.clear();
    this.devices.clear();
    this.pending?.clear();
  }

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

  /** Closes a client that did not authenticate in time. */
  closeUnauthenticated(): void {
    if (this.principal === null) this.close(CloseCode.unauthenticated, 'authentication timeout');
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.metrics.wsCloses.inc({ reason });
    this.socket.close(code, reason);
  }
}
