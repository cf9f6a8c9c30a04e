/** Device ids: 1–128 characters of `[A-Za-z0-9._:-]` (safe in MQTT topics, URLs and Redis keys). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export function isDeviceId(value: unknown): value is string {
  return typeof value === 'string' && DEVICE_ID_PATTERN.test(value);
}
