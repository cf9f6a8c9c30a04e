import type { Principal } from '../security/api-keys.js';
import { authorize, type Action } from '../security/policy.js';
import { subscribeDevice, unsubscribeDevice } from './device-subscriptions.js';
import { subscribeDevices, unsubscribeDevices } from './device-list.js';
import { subscribeAll, unsubscribeAll } from './fleet-subscription.js';
import { encodeAck, encodePong, type ClientMessage, type RequestId } from './protocol.js';
import { authenticateWith } from './session-auth.js';
import type { Session } from './session.js';

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

/** One decoded client message: authentication first, then the policy, then its handler. */
export function dispatch(session: Session, message: ClientMessage): void {
  if (message.type === 'auth') return authenticateWith(session, message.token, message.id);
  const principal = session.principal;
  if (principal === null) {
    if (message.type !== 'ping') session.sendError(message.id, 'unauthenticated', 'send {"type":"auth","token":…} first');
    else session.socket.send(encodePong(message.id));
    return;
  }
  const rule = WS_POLICY[message.type];
  if (rule !== null) {
    const decision = authorize(principal, rule.action, rule.device === 'message' && 'deviceId' in message ? message.deviceId : null);
    if (!decision.ok) return session.sendError(message.id, 'forbidden', decision.message);
  }
  switch (message.type) {
    case 'subscribe_device':
      return subscribeDevice(session, message.deviceId, message.id, message.resume);
    case 'unsubscribe_device':
      return unsubscribeDevice(session, message.deviceId, message.id);
    case 'subscribe_devices':
      return subscribeDevices(session, principal, message.deviceIds, message.resume, message.id);
    case 'unsubscribe_devices':
      return unsubscribeDevices(session, message.deviceIds, message.id);
    case 'subscribe_all':
      return subscribeAll(session, message.id, message.resume, message.summaries);
    case 'unsubscribe_all':
      return unsubscribeAll(session, message.id);
    case 'ping':
      session.socket.send(encodePong(message.id));
      return;
    case 'ack_alert':
      return acknowledgeAlert(session, principal, message.id, message.alertId);
  }
}

/** `ack_alert`: the alert may be held by another instance; its device is authorized once found. */
function acknowledgeAlert(session: Session, principal: Principal, id: RequestId, alertId: string): void {
  session.hub
    .acknowledgeAlertAnywhere(alertId, `ws:${session.connectionId}`, (deviceId) => authorize(principal, 'alert.ack', deviceId).ok)
    .then(
      (alert) => {
        if (session.closed) return;
        if (alert === null) session.sendError(id, 'alert_not_found', `no active alert ${alertId}`);
        else if (alert === 'forbidden') session.sendError(id, 'forbidden', "this key may not use this alert's device");
        else session.socket.send(encodeAck(id));
      },
      (error: unknown) => session.failedLater(id, error, 'ack_alert', 'could not reach the instance holding this alert; retry'),
    )
    .catch((error: unknown) => session.internalError(id, error, 'ack_alert'));
}
