/**
 * Carries frames to the WebSocket clients that follow a device (or everything, for
 * `subscribe_all`). `local` delivers in-process; a Redis implementation will carry frames between
 * hub instances and then deliver locally, dropping its own echo.
 *
 * `key` names what a frame supersedes for a lagging client (conflation): a newer frame with the
 * same key replaces an older one that has not been sent yet.
 */
export interface Fanout {
  readonly kind: 'local' | 'redis';
  start(local: LocalDelivery): Promise<void>;
  toDevice(deviceId: string, frame: string, key: string): void;
  toAll(frame: string, key: string): void;
  stop(): Promise<void>;
}

/** Delivery to the clients connected to this process (implemented by the WebSocket server). */
export interface LocalDelivery {
  toDevice(deviceId: string, frame: string, key: string): void;
  toAll(frame: string, key: string): void;
}
