import type { StatusChange } from '../domain/device-status.js';
import type { Faults } from '../errors/boundary.js';
import type { DeviceObserver } from '../hub/hub.js';
import type { Metrics } from '../metrics.js';
import type { DeviceState } from '../domain/device-state.js';
import type { ScoredHealth } from '../domain/alert.js';
import type { Telemetry } from '../domain/telemetry.js';

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
  /**
   * Home Assistant discovery: `nodeId` (HA_NODE_ID) starts every discovery node id, unique_id and
   * device identifier, so two hubs on one broker do not overwrite each other's entities.
   */
  readonly homeAssistant: { readonly prefix: string; readonly stateIntervalMs: number; readonly nodeId: string } | null;
  readonly metrics: Metrics;
  readonly faults: Faults;
}

export function availabilityPayload(format: 'text' | 'json', online: boolean): string {
  const word = online ? 'online' : 'offline';
  return format === 'json' ? `{"state":"${word}"}` : word;
}

/** What Home Assistant was last told of one device, and which of its entities' configs are published. */
interface Known {
  state: DeviceState;
  score: number | null;
  battery: number | null;
  rssi: number | null;
  /** Bits of ENTITY: the configs published by this process (since the last ownership change). */
  published: number;
}

const ENTITY = { base: 1, battery: 2, rssi: 4 } as const;

/**
 * Publishes what the hub knows to MQTT tools: per device a retained `online`/`offline` on
 * `{prefix}/{id}/availability` at every transition the device's owner announces (so once per
 * transition in a cluster), cleared when the device is deleted; with Home Assistant discovery, the
 * retained configs of its entities (battery and RSSI only once the device has sent one) and, at
 * most every HA_STATE_INTERVAL_S, a retained state with score, battery and rssi on
 * `{prefix}/{id}/health` for each device whose status, score, battery or rssi changed. Nothing is
 * published from stored state at start: only transitions observed after it, so a restart
 * republishes nothing stale.
 */
export class MqttAvailability implements DeviceObserver {
  /** Home Assistant only: per device, its last known values and published configs. */
  private readonly known = new Map<string, Known>();
  private readonly dirty = new Set<string>();
  private readonly timer: NodeJS.Timeout | null;
  readonly readingsSeen: ((state: DeviceState, t: Telemetry) => void) | null;

  constructor(private readonly opts: AvailabilityOptions) {
    this.timer = opts.homeAssistant === null ? null : setInterval(() => this.flushStates(), opts.homeAssistant.stateIntervalMs);
    this.timer?.unref();
    this.readingsSeen = opts.homeAssistant === null ? null : (state, t) => this.readings(state, t);
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
    if (this.opts.homeAssistant === null) return;
    this.knownOf(state);
    this.dirty.add(state.id);
  }

  healthScored(state: DeviceState, health: ScoredHealth): void {
    if (this.opts.homeAssistant === null) return;
    const known = this.knownOf(state);
    if (known.score === health.score) return;
    known.score = health.score;
    this.dirty.add(state.id);
  }

  /** Home Assistant: a newest reading with a battery level or rssi; a change is published with the next state. */
  private readings(state: DeviceState, t: Telemetry): void {
    let changed = !this.known.has(state.id);
    const known = this.knownOf(state);
    if (t.batteryLevel !== null && t.batteryLevel !== known.battery) {
      known.battery = t.batteryLevel;
      changed = true;
    }
    if (t.rssi !== null && t.rssi !== known.rssi) {
      known.rssi = t.rssi;
      changed = true;
    }
    if (!changed) return;
    this.discover(known);
    this.dirty.add(state.id);
  }

  forgotten(deviceId: string): void {
    this.dirty.delete(deviceId);
    this.known.delete(deviceId);
    if (this.opts.perDevice || this.opts.homeAssistant !== null) this.send('availability', this.availabilityTopic(deviceId), '');
    if (this.opts.homeAssistant === null) return;
    for (const topic of Object.keys(this.discoveryConfigs(deviceId))) this.send('discovery', topic, '');
    this.send('ha_state', this.healthTopic(deviceId), '');
  }

  /**
   * Cluster membership changed, so devices may have changed owner: what this process published is
   * forgotten, and each device's configs are published again by its owner at its next transition,
   * score or reading (retained configs are idempotent; a device this instance no longer owns is
   * never told here again).
   */
  ownershipChanged(): void {
    this.known.clear();
    this.dirty.clear();
  }

  /** Publishes the state of every device changed since the last flush (and the last flush of all, at stop). */
  flushStates(): void {
    for (const id of this.dirty) {
      const known = this.known.get(id);
      if (known === undefined) continue;
      this.discover(known);
      const body: Record<string, unknown> = { status: known.state.status };
      if (known.score !== null) body.score = known.score;
      if (known.battery !== null) body.battery = known.battery;
      if (known.rssi !== null) body.rssi = known.rssi;
      this.send('ha_state', this.healthTopic(id), JSON.stringify(body));
    }
    this.dirty.clear();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.flushStates();
  }

  /** The device's known values, made from its newest reading (restored from storage, at start) when first needed. */
  private knownOf(state: DeviceState): Known {
    let known = this.known.get(state.id);
    if (known === undefined) {
      const t = state.telemetry;
      known = { state, score: null, battery: t?.batteryLevel ?? null, rssi: t?.rssi ?? null, published: 0 };
      this.known.set(state.id, known);
    }
    known.state = state;
    this.discover(known);
    return known;
  }

  /**
   * Publishes the configs not yet published: connectivity and score at once, battery and RSSI only
   * once the device has sent one (a device without a battery gets no battery entity, and Home
   * Assistant no template reading a value that is never there).
   */
  private discover(known: Known): void {
    const want = ENTITY.base | (known.battery !== null ? ENTITY.battery : 0) | (known.rssi !== null ? ENTITY.rssi : 0);
    if ((known.published & want) === want) return;
    const configs = this.discoveryConfigs(known.state.id);
    const entityOf = (topic: string) => (topic.endsWith('/battery/config') ? ENTITY.battery : topic.endsWith('/rssi/config') ? ENTITY.rssi : ENTITY.base);
    for (const [topic, config] of Object.entries(configs)) {
      const entity = entityOf(topic);
      if ((want & entity) !== 0 && (known.published & entity) === 0) this.send('discovery', topic, JSON.stringify(config));
    }
    known.published |= want;
  }

  /** Home Assistant MQTT discovery: one device with a connectivity binary_sensor and three sensors. */
  discoveryConfigs(deviceId: string): Record<string, Record<string, unknown>> {
    const ha = this.opts.homeAssistant!;
    const node = `${ha.nodeId}_${objectId(deviceId)}`;
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
      // A state without the key (not known since the hub started) renders None: "unknown" in Home
      // Assistant, not a template warning.
      value_template: `{{ value_json.${key} | default(None) }}`,
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
