/**
 * The uWS topics a device's frames travel on. Status changes, health scores and alerts go to the
 * device's followers and to `*`; updates and command states to the device's followers only. A
 * connection following both a device and `*` must get each frame once (uWS delivers a frame
 * published on two of its topics twice), so a device has two topics:
 *
 * - `{id}`: frames only the device's followers get (`device_update`, `command_update`);
 * - `{id}~`: its frames that `*` carries too.
 *
 * A connection following the device joins both, unless it follows `*`, which then brings it the
 * second kind. Each frame is still published once per topic it belongs to: no extra publish, and
 * `device_update` (the hot path) stays one publish on one topic. `~` is not allowed in device ids.
 */
export function sharedTopic(deviceId: string): string {
  return `${deviceId}~`;
}

/** Whether a device frame with this conflation key is also sent on `*` (status `s`, health `h`, alerts `a:…`). */
export function alsoOnAll(key: string): boolean {
  const kind = key.charCodeAt(0);
  return kind === 115 /* s */ || kind === 104 /* h */ || kind === 97 /* a */;
}
