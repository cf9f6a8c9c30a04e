import type { StatusChange } from '../domain/device-status.js';
import { alertData, iso } from '../domain/representations.js';
import type { Alert, AlertTransition } from '../domain/alert.js';
import type { AlertEventData, CloudEvent } from '../domain/cloud-event.js';

export const ALERT_EVENT_TYPES = ['vigil.alert.raised', 'vigil.alert.updated', 'vigil.alert.acknowledged', 'vigil.alert.cleared'] as const;
export const DEVICE_EVENT_TYPES = ['vigil.device.online', 'vigil.device.offline'] as const;

export interface EventContext {
  /** The CloudEvents `source` (PUBLIC_URL, else `urn:vigil:hub`). */
  readonly source: string;
  /** PUBLIC_URL without a trailing slash, or null: dashboard links are left out then. */
  readonly publicUrl: string | null;
  readonly deviceTypeOf: (deviceId: string) => string | null;
}


/** The dashboard's page of the device (of the fleet, for `*`). */
export function dashboardUrl(publicUrl: string | null, deviceId: string): string | null {
  if (publicUrl === null) return null;
  return deviceId === '*' ? `${publicUrl}/` : `${publicUrl}/#/device/${encodeURIComponent(deviceId)}`;
}

/**
 * The id names the alert and the transition: an alert is raised, acknowledged and cleared at most
 * once each, so a retried batch (or a redelivered write) yields the same id and the outbox's unique
 * (sink, id) keeps one row. Updates may repeat: theirs carries the update's time too.
 */
export function alertEventId(alert: Alert, transition: AlertTransition): string {
  return transition === 'updated' ? `${alert.id}:updated:${alert.updatedAt}` : `${alert.id}:${transition}`;
}

export function alertEvent(alert: Alert, transition: AlertTransition, context: EventContext): CloudEvent {
  return {
    specversion: '1.0',
    id: alertEventId(alert, transition),
    source: context.source,
    type: `vigil.alert.${transition}`,
    subject: alert.deviceId,
    time: new Date(alert.updatedAt).toISOString(),
    datacontenttype: 'application/json',
    data: { ...alertData(alert), device_type: context.deviceTypeOf(alert.deviceId), dashboard_url: dashboardUrl(context.publicUrl, alert.deviceId) },
  };
}

export function deviceEvent(change: StatusChange, context: EventContext): CloudEvent {
  return {
    specversion: '1.0',
    // A device changes to one status at most once at a given instant (status_changes is unique on it).
    id: `${change.deviceId}:${change.status}:${change.at}`,
    source: context.source,
    type: `vigil.device.${change.status}`,
    subject: change.deviceId,
    time: new Date(change.at).toISOString(),
    datacontenttype: 'application/json',
    data: {
      device_id: change.deviceId,
      device_type: context.deviceTypeOf(change.deviceId),
      status: change.status,
      previous: change.previous,
      reason: change.reason,
      last_seen: iso(change.lastSeen),
      at: new Date(change.at).toISOString(),
      dashboard_url: dashboardUrl(context.publicUrl, change.deviceId),
    },
  };
}

export function isAlertEventData(data: CloudEvent['data']): data is AlertEventData {
  return 'alert_id' in data;
}
