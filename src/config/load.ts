import { redactUrlsIn } from '../redact-url.js';
import { mqttInputs } from '../transport/mqtt-inputs.js';
import { TemplateError } from '../transport/topic-templates.js';
import { ConfigError } from './config-error.js';
import { initialRuleSet } from './options.js';
import { configSchema, type Config, type ConfigKey } from './schema.js';

/** Settings whose value is a secret: a configuration error names them but never shows their value. */
export function isSecretSetting(name: string): boolean {
  return /(SECRET|PASSWORD|TOKEN|_KEY|WEBHOOK_URL)$/.test(name);
}

/** `--offline-timeout-s 30` and `--offline-timeout-s=30` become `OFFLINE_TIMEOUT_S=30`. */
export function parseFlags(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}": flags look like --port 8080`);
    const eq = arg.indexOf('=');
    const name = (eq === -1 ? arg.slice(2) : arg.slice(2, eq)).replaceAll('-', '_').toUpperCase();
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new ConfigError(`flag ${arg} needs a value`);
      i++;
    }
    if (!(name in configSchema.shape)) throw new ConfigError(`unknown flag ${arg}; known: ${flagNames().join(', ')}`);
    out[name] = value;
  }
  return out;
}

function flagNames(): string[] {
  return Object.keys(configSchema.shape).map((k) => `--${k.toLowerCase().replaceAll('_', '-')}`);
}

/**
 * Pairs of settings of which the first must not exceed the second: each is bounded alone above,
 * but a minimum over its maximum would be silently wrong (LEARNED_TIMEOUT_MIN_SAMPLES over
 * LEARNED_TIMEOUT_SAMPLES: no timeout is ever learned, the ring never holds that many).
 */
const ORDERED_SETTINGS: readonly (readonly [ConfigKey, ConfigKey])[] = [
  ['LEARNED_TIMEOUT_MIN_SAMPLES', 'LEARNED_TIMEOUT_SAMPLES'],
  ['LEARNED_TIMEOUT_MIN_S', 'LEARNED_TIMEOUT_MAX_S'],
  ['NOTIFY_RETRY_BASE_MS', 'NOTIFY_RETRY_MAX_MS'],
];

/** Reads the configuration; throws a ConfigError naming each bad variable and what it accepts. */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  argv: readonly string[] = [],
): Config {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  Object.assign(raw, parseFlags(argv));
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) {
    initialRuleSet(parsed.data); // fail at start, naming the bad rule
    const disordered = ORDERED_SETTINGS.filter(([low, high]) => Number(parsed.data[low]) > Number(parsed.data[high]));
    if (disordered.length > 0) {
      throw new ConfigError(`invalid configuration:\n${disordered.map(([low, high]) => `  ${low}=${parsed.data[low]} is over ${high}=${parsed.data[high]}: it must not be`).join('\n')}`);
    }
    if (parsed.data.CLUSTER_ENABLED && (!parsed.data.REDIS_URL || !parsed.data.MQTT_URL)) {
      throw new ConfigError(
        'invalid configuration:\n  CLUSTER_ENABLED=true needs REDIS_URL and MQTT_URL: instances share Redis and an external MQTT broker, every instance reading every device topic (the embedded broker is single-instance)',
      );
    }
    if (parsed.data.CLUSTER_ENABLED && parsed.data.HUB_STATE_TOPIC !== undefined && parsed.data.HUB_STATE_TOPIC !== 'off' && !parsed.data.HUB_STATE_TOPIC.includes('{instance}')) {
      throw new ConfigError('invalid configuration:\n  HUB_STATE_TOPIC: in a cluster it must hold {instance}, so each instance has its own state topic and Last Will');
    }
    try {
      mqttInputs(parsed.data);
    } catch (error) {
      if (error instanceof TemplateError) throw new ConfigError(`invalid configuration:\n  ${error.message}`);
      throw error;
    }
    return parsed.data;
  }
  const lines = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '?');
    const value = raw[key] ?? '';
    if (!isSecretSetting(key)) return `  ${key}=${JSON.stringify(redactUrlsIn(value))}: ${issue.message}`;
    // Never the value of a secret, not even inside the validator's message.
    return `  ${key} (value not shown: a secret): ${value === '' ? issue.message : issue.message.replaceAll(value, '…')}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}
