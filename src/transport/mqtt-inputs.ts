import type { Config } from '../config.js';
import type { FieldMap } from '../domain/mapped-telemetry.js';
import { objectId } from './mqtt-availability.js';
import { compileTemplate, PRESETS, TemplateError, topicsOverlap, type TemplateKind, type TopicTemplate } from './topic-templates.js';

/** What the hub reads besides `{prefix}/{id}/…`, from MQTT_PRESET and the MQTT_*_TOPICS settings. */
export interface MqttInputs {
  readonly templates: readonly TopicTemplate[];
  readonly fieldMap: FieldMap;
  readonly ignoredIds: ReadonlySet<string>;
}

/** What the hub publishes (docs/presence.md#what-the-hub-publishes); none of it may be read back as input. */
export function outputTopics(config: Config, instanceId: string | null): string[] {
  const out = [`${config.MQTT_TOPIC_PREFIX}/{id}/availability`];
  const hubState = hubStateTopic(config, instanceId);
  if (hubState !== null) out.push(hubState);
  if (config.HA_DISCOVERY) out.push(`${config.MQTT_TOPIC_PREFIX}/{id}/health`, `${config.HA_DISCOVERY_PREFIX}/#`);
  return out;
}

/** HUB_STATE_TOPIC with `{instance}` filled in; null when turned off. */
export function hubStateTopic(config: Config, instanceId: string | null): string | null {
  const topic = config.HUB_STATE_TOPIC ?? (instanceId === null ? 'vigil/hub/state' : 'vigil/hub/{instance}/state');
  if (topic === 'off') return null;
  return topic.replaceAll('{instance}', instanceId ?? 'hub');
}

/**
 * HA_NODE_ID, else derived from MQTT_TOPIC_PREFIX: `vigil` for the default prefix (`devices`, so
 * the ids of a single hub stay what they were), `vigil_{prefix}` otherwise (as an object id). Two
 * hubs on one broker already need distinct prefixes (each reads `{prefix}/+/…`), so they get
 * distinct Home Assistant ids without setting anything.
 */
export function haNodeId(config: Config): string {
  if (config.HA_NODE_ID !== undefined) return config.HA_NODE_ID;
  return config.MQTT_TOPIC_PREFIX === 'devices' ? 'vigil' : `vigil_${objectId(config.MQTT_TOPIC_PREFIX)}`;
}

/** Throws a TemplateError naming the bad setting; called when the configuration is read. */
export function mqttInputs(config: Config, instanceId: string | null = null): MqttInputs {
  const byKind: Record<TemplateKind, string[]> = { telemetry: [], heartbeat: [], availability: [] };
  const fieldPairs: string[] = [];
  const presetHold: string[] = [];
  const ignored = new Set<string>();
  for (const name of list(config.MQTT_PRESET)) {
    const preset = PRESETS[name];
    if (preset === undefined) throw new TemplateError(`MQTT_PRESET: unknown preset "${name}" (known: ${Object.keys(PRESETS).join(', ')})`);
    byKind.telemetry.push(...preset.telemetry);
    byKind.heartbeat.push(...preset.heartbeat);
    byKind.availability.push(...preset.availability);
    presetHold.push(...preset.hold);
    fieldPairs.push(...preset.fieldMap);
    for (const id of preset.ignoredIds) ignored.add(id);
  }
  byKind.telemetry.push(...list(config.MQTT_TELEMETRY_TOPICS));
  byKind.heartbeat.push(...list(config.MQTT_HEARTBEAT_TOPICS));
  byKind.availability.push(...list(config.MQTT_AVAILABILITY_TOPICS));
  fieldPairs.push(...list(config.MQTT_FIELD_MAP));
  for (const id of list(config.MQTT_IGNORED_IDS)) ignored.add(id);

  // MQTT_AVAILABILITY_HOLD, when given, replaces the presets' choice: `none`, or the templates that hold.
  const holdSetting = config.MQTT_AVAILABILITY_HOLD === undefined ? presetHold : config.MQTT_AVAILABILITY_HOLD.trim() === 'none' ? [] : list(config.MQTT_AVAILABILITY_HOLD);
  const hold = new Set(holdSetting);
  for (const template of hold) {
    if (!byKind.availability.includes(template)) {
      throw new TemplateError(`MQTT_AVAILABILITY_HOLD: "${template}" is not an availability template (MQTT_AVAILABILITY_TOPICS or a preset's: ${byKind.availability.join(', ') || 'none'})`);
    }
  }
  const templates: TopicTemplate[] = [];
  for (const kind of ['availability', 'heartbeat', 'telemetry'] as const) {
    for (const template of byKind[kind]) {
      if (templates.some((t) => t.template === template)) continue;
      templates.push(compileTemplate(kind, template, kind === 'availability' && hold.has(template)));
    }
  }
  if (templates.length > config.MAX_TOPIC_TEMPLATES) {
    throw new TemplateError(`${templates.length} topic templates (presets included), more than MAX_TOPIC_TEMPLATES=${config.MAX_TOPIC_TEMPLATES}`);
  }
  const builtIn = ['telemetry', 'heartbeat', 'status', 'commands/ack'].map((k) => `${config.MQTT_TOPIC_PREFIX}/{id}/${k}`);
  for (const output of outputTopics(config, instanceId)) {
    for (const input of [...builtIn, ...templates.map((t) => t.template)]) {
      if (topicsOverlap(output, input)) {
        throw new TemplateError(`input topic "${input}" would read the hub's own publications on "${output}" back as device messages: change the template, MQTT_TOPIC_PREFIX, HUB_STATE_TOPIC or HA_DISCOVERY_PREFIX`);
      }
    }
  }

  const fieldMap = new Map<string, string>();
  for (const pair of fieldPairs) {
    const eq = pair.indexOf('=');
    const from = pair.slice(0, eq);
    const to = pair.slice(eq + 1);
    if (eq <= 0 || from.length > 64 || to.length > 64) throw new TemplateError(`MQTT_FIELD_MAP: "${pair}" is not source=target (each 1-64 characters; an empty target drops the reading)`);
    fieldMap.set(from, to); // later settings win over a preset's
  }
  if (fieldMap.size > 256) throw new TemplateError('MQTT_FIELD_MAP: more than 256 entries');
  return { templates, fieldMap, ignoredIds: ignored };
}

function list(value: string | undefined): string[] {
  return value?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
}
