import type { alertData } from './representations.js';

/**
 * CloudEvents 1.0 in structured mode (the whole event is the JSON body, content type
 * `application/cloudevents+json`): https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md.
 * Types are `vigil.alert.<transition>` and `vigil.device.<status>`; docs/notifications.md shows one.
 */
export interface CloudEvent {
  readonly specversion: '1.0';
  /** Stable for one transition: the same on every retry, after a restart and on every instance. */
  readonly id: string;
  readonly source: string;
  readonly type: string;
  /** The device the event is about (`*` for the fleet-wide `mass_offline`). */
  readonly subject: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: AlertEventData | DeviceEventData;
}

export type AlertEventData = ReturnType<typeof alertData> & {
  readonly device_type: string | null;
  readonly dashboard_url: string | null;
};

export interface DeviceEventData {
  readonly device_id: string;
  readonly device_type: string | null;
  readonly status: string;
  readonly previous: string | null;
  readonly reason: string;
  readonly last_seen: string | null;
  readonly at: string;
  readonly dashboard_url: string | null;
}
