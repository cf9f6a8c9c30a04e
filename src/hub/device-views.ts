import type { DeviceStatus } from '../domain/device-status.js';
import type { Hub } from './hub.js';
import type { TimeoutSource } from './offline-timeouts.js';

/** A device as the API shows it, from the instance that holds its state. */
export interface DeviceView {
  readonly id: string;
  readonly status: DeviceStatus | 'unknown';
  readonly flapping: boolean;
  readonly lastSeen: number | null;
  readonly ts: number | null;
  readonly batteryLevel: number | null;
  readonly rssi: number | null;
  readonly type: string | null;
  readonly name: string | null;
  readonly timeoutMs: number | null;
  readonly effectiveTimeoutMs: number;
  readonly timeoutSource: TimeoutSource;
  readonly healthScore: number | null;
  readonly activeAlerts: number;
}

export interface DeviceSettings {
  readonly type?: string | null;
  readonly name?: string | null;
  readonly timeoutMs?: number | null;
}

/**
 * Device reads and settings for the REST API: readings, scores and alerts come from each device's
 * owner (this instance unless clustered); settings apply here and on the owner, which times the
 * device out.
 */
export class DeviceViews {
  constructor(private readonly hub: Hub) {
    hub.owner.serve({ views: (_first, ids) => ids.map((id) => this.local(id)), applySettings: (id, settings) => this.apply(id, settings) });
  }

  /** Views of known devices (unknown ids are left out). */
  async many(ids: readonly string[]): Promise<Map<string, DeviceView>> {
    const out = new Map<string, DeviceView>();
    const { local, remote } = this.hub.owner.byOwner(ids);
    for (const id of local) {
      const view = this.local(id);
      if (view !== null) out.set(id, view);
    }
    await Promise.all(
      remote.map(async (group) => {
        const answer = await this.hub.owner.views(group);
        // An owner that does not answer: this instance's own view (status is shared; readings may lag).
        group.forEach((id, i) => {
          const view = answer.ok ? answer.value[i] : this.local(id);
          if (view) out.set(id, view);
        });
      }),
    );
    return out;
  }

  async one(id: string): Promise<DeviceView | null> {
    return (await this.many([id])).get(id) ?? null;
  }

  /** New settings (already stored): here, and on the owner. */
  async updateSettings(id: string, settings: DeviceSettings): Promise<DeviceView> {
    const local = this.apply(id, settings);
    if (this.hub.owner.isLocal(id)) return local;
    const answer = await this.hub.owner.applySettings(id, settings);
    return answer.ok ? answer.value : local;
  }

  private apply(id: string, settings: DeviceSettings): DeviceView {
    const state = this.hub.registry.adopt(id);
    if (typeof state === 'string') throw new Error(`device ${id} refused: ${state}`);
    if (settings.type !== undefined) state.type = settings.type;
    if (settings.name !== undefined) state.name = settings.name;
    if (settings.timeoutMs !== undefined) state.timeoutMs = settings.timeoutMs;
    this.hub.retime(state);
    this.hub.summaries.touch(id);
    return this.local(id)!;
  }

  private local(id: string): DeviceView | null {
    const state = this.hub.registry.get(id);
    if (state === undefined) return null;
    const timeout = this.hub.timeoutOf(id)!;
    return {
      id,
      status: state.status,
      flapping: state.flapping,
      lastSeen: state.lastSeen,
      ts: state.telemetry?.ts ?? null,
      batteryLevel: state.telemetry?.batteryLevel ?? null,
      rssi: state.telemetry?.rssi ?? null,
      type: state.type,
      name: state.name,
      timeoutMs: state.timeoutMs,
      effectiveTimeoutMs: timeout.ms,
      timeoutSource: timeout.source,
      healthScore: this.hub.insights.score(id),
      activeAlerts: this.hub.insights.activeAlerts(id).length,
    };
  }
}
