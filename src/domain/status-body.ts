import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './device-id.js';

/**
 * The body of `POST /status`: the earlier REST service's (seed 003), plus the hub's optional
 * readings (their values judged by the same tolerant decoding as MQTT's, in validateTelemetry). Checked by the instance that received the request and again by the device's owner
 * when it was forwarded (src/cluster/owner-api).
 */
export const statusBody = z.object({
  device_id: z.string().regex(DEVICE_ID_PATTERN, 'device ids are 1-128 chars of [A-Za-z0-9._:-]'),
  timestamp: z.union([z.iso.datetime({ offset: true, local: true }), z.number().int().nonnegative()]).optional(),
  battery_level: z.number().min(0).max(100).optional(),
  rssi: z.number().min(-140).max(0).optional(),
  online: z.boolean().optional(),
  response_time_ms: z.number().min(0).optional(),
  error_rate: z.number().min(0).max(1).optional(),
  // Readings as tolerant as MQTT's (src/domain/readings.ts): booleans 1/0, nested objects and arrays of
  // numbers flattened, the rest skipped and counted; bounded by MAX_METRIC_KEYS after flattening.
  metrics: z.record(z.string(), z.unknown()).optional(),
});
