import type { StatusChange } from '../domain/device-status.js';
import type { Faults } from '../errors/boundary.js';
import type { DeviceObserver } from '../hub/hub.js';
import type { Metrics } from '../metrics.js';
import type { DeviceState } from '../domain/device-state.js';
import type { ScoredHealth } from '../domain/alert.js';

export type Publish = (topic: string, payload: string, retain: boolean) => Promise<void>;
type Kind = 'availability' | 'hub_state' | 'discovery' | 'ha_state';

export interface AvailabilityOptions {
  readonly publish: Publish;
  readonly topicPrefix: string;
  /** `text`: `online`/`offline` (Home Assistant's defaults); `json`: `{"state":"online"}` (Zigbee2MQTT 2.x). */
  readonly format: 'text' | 'json';
  /** Availability per device (AVAILABILITY_PUBLISH); off leaves only Home Assistant's state, if on. */
  readonly perDevice: boolean;
  /** The hub's own state topic (its Last Will), for Home Assistant's availability; null when off. */
  readonly hubStateTopic: string | null;
  readonly homeAssistant: { readonly prefix: string; readonly stateIntervalMs: number } | null;
  readonly metrics: Metrics;
  readonly faults: Faults;
}

export function availabilityPayload(format: 'text' | 'json', online: boolean): string {
  const word = online ? 'online' : 'offline';
  return format === 'json' ? `{"state":"${word}"}` : word;
}

/**
 * Publishes what the hub knows to MQTT tools: per device a retained `online`/`offline` on
 * `{prefix}/{id}/availability` at every transition the device's owner announces (so once per
 * transition in a cluster), cleared when the device is deleted; with Home Assistant discovery, the
 * retained configs of its entities and, at most every HA_STATE_INTERVAL_S, a retained state with
 * score, battery and rssi on `{prefix}/{id}/health`. Nothing is published from stored state at
 * start: only transitions observed after it, so a restart republishes nothing stale.
 */
export class MqttAvailability implements DeviceObserver {
  private readonly discovered = new Set<string>();
  private readonly dirty = new Map<string, { state: DeviceState; score: number }>();
  private readonly timer: NodeJS.Timeout | null;

  constructor(private readonly opts: AvailabilityOptions) {
    this.timer = opts.homeAssistant === null ? null : setInterval(() => this.flushStates(), opts.homeAssistant.stateIntervalMs);
    this.timer?.unref();
  }

  availabilityTopic(deviceId: string): string {
    return `${this.opts.topicPrefix}/${deviceId}/availability`;
  }

  healthTopic(deviceId: string): string {
    return `${this.opts.topicPrefix}/${deviceId}/health`;
  }

  statusAnnounced(state: DeviceState, change: StatusChange): void {
    if (this.opts.perDevice || this.opts.homeAssistant !== null) {
      this.send('availability', this.availabilityTopic(state.id), availabilityPayload(this.opts.format, change.status === 'online'));
    }
    this.discover(state.id);
  }

  healthScored(state: DeviceState, health: ScoredHealth): void {
    if (this.opts.homeAssistant === null) return;
    this.discover(state.id);
    this.dirty.set(state.id, { state, score: health.score });
  }

  forgotten(deviceId: string): void {
    this.dirty.delete(deviceId);
    this.discovered.delete(deviceId);
    if (this.opts.perDevice || this.opts.homeAssistant !== null) this.send('availability', this.availabilityTopic(deviceId), '');
    if (this.opts.homeAssistant === null) return;
    for (const topic of Object.keys(this.discoveryConfigs(deviceId))) this.send('discovery', topic, '');
    this.send('ha_state', this.healthTopic(deviceId), '');
  }

  /** Publishes the state of every device scored since the last flush (and the last flush of all, at stop). */
  flushStates(): void {
    for (const [id, { state, score }] of this.dirty) {
      const t = state.telemetry;
      const body: Record<string, unknown> = { status: state.status, score };
      if (t?.batteryLevel != null) body.battery = t.batteryLevel;
      if (t?.rssi != null) body.rssi = t.rssi;
      this.send('ha_state', this.healthTopic(id), JSON.stringify(body));
    }
    this.dirty.clear();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.flushStates();
  }

  private discover(deviceId: string): void {
    if (this.opts.homeAssistant === null || this.discovered.has(deviceId)) return;
    this.discovered.add(deviceId);
    for (const [topic, config] of Object.entries(this.discoveryConfigs(deviceId))) this.send('discovery', topic, JSON.stringify(config));
  }

  /** Home Assistant MQTT discovery: one device with a connectivity binary_sensor and three sensors. */
  discoveryConfigs(deviceId: string): Record<string, Record<string, unknown>> {
    const ha = this.opts.homeAssistant!;
    const node = `vigil_${objectId(deviceId)}`;
    const json = this.opts.format === 'json';
    const stateTemplate = json ? { value_template: '{{ value_json.state }}' } : {};
    const hub = this.opts.hubStateTopic;
    const device = { identifiers: [node], name: deviceId, manufacturer: 'Vigil', model: 'monitored device' };
    const hubAvailability = hub === null ? [] : [{ topic: hub, payload_available: 'online', payload_not_available: 'offline', ...(json ? { value_template: '{{ value_json.state }}' } : {}) }];
    const deviceAvailability = { topic: this.availabilityTopic(deviceId), payload_available: 'online', payload_not_available: 'offline', ...(json ? { value_template: '{{ value_json.state }}' } : {}) };
    const sensor = (key: string, name: string, extra: Record<string, unknown>) => ({
      name,
      unique_id: `${node}_${key}`,
      state_topic: this.healthTopic(deviceId),
      value_template: `{{ value_json.${key} }}`,
      state_class: 'measurement',
      // A sensor is unavailable when its device or the hub is offline (the last known value is stale).
      availability: [...hubAvailability, deviceAvailability],
      availability_mode: 'all',
      device,
      ...extra,
    });
    return {
      [`${ha.prefix}/binary_sensor/${node}/connectivity/config`]: {
        name: 'Connectivity',
        unique_id: `${node}_connectivity`,
        device_class: 'connectivity',
        state_topic: this.availabilityTopic(deviceId),
        payload_on: 'online',
        payload_off: 'offline',
        ...stateTemplate,
        // "Device offline" and "monitor down" differ: with the hub gone the sensor is unavailable.
        ...(hub === null ? {} : { availability: hubAvailability }),
        device,
      },
      [`${ha.prefix}/sensor/${node}/battery/config`]: sensor('battery', 'Battery', { device_class: 'battery', unit_of_measurement: '%' }),
      [`${ha.prefix}/sensor/${node}/rssi/config`]: sensor('rssi', 'RSSI', { device_class: 'signal_strength', unit_of_measurement: 'dBm' }),
      [`${ha.prefix}/sensor/${node}/score/config`]: sensor('score', 'Health score', { icon: 'mdi:heart-pulse' }),
    };
  }

  private send(kind: Kind, topic: string, payload: string): void {
    this.opts.publish(topic, payload, true).then(
      () => this.opts.metrics.mqttPublished.inc({ kind, outcome: 'sent' }),
      (error: unknown) => {
        this.opts.metrics.mqttPublished.inc({ kind, outcome: 'failed' });
        this.opts.faults.catcher('mqtt', { op: 'publish', kind })(error);
      },
    );
  }
}

/**
 * Home Assistant's object ids allow [a-zA-Z0-9_-]; device ids also hold `.` and `:`. Those become
 * `_`, with a short hash of the id appended so `a.b` and `a_b` stay two devices.
 */
export function objectId(deviceId: string): string {
  const safe = deviceId.replace(/[^A-Za-z0-9_-]/g, '_');
  if (safe === deviceId) return safe;
  let hash = 2166136261;
  for (let i = 0; i < deviceId.length; i++) hash = Math.imul(hash ^ deviceId.charCodeAt(i), 16777619);
  return `${safe}_${(hash >>> 0).toString(36)}`;
}
