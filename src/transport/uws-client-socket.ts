import type { ClientSocket } from '../hub/session.js';
import type { WebSocket } from './uws.js';

/** The session's view of a uWS socket: methods on a prototype, so an idle connection costs one small object. */
export class UwsClientSocket<T> implements ClientSocket {
  constructor(private readonly ws: WebSocket<T>) {}
  send(frame: string): void {
    this.ws.send(frame, false);
  }
  subscribe(channel: string): void {
    this.ws.subscribe(channel);
  }
  unsubscribe(channel: string): void {
    this.ws.unsubscribe(channel);
  }
  bufferedAmount(): number {
    return this.ws.getBufferedAmount();
  }
  cork(fn: () => void): void {
    this.ws.cork(fn);
  }
  close(code: number, reason: string): void {
    this.ws.end(code, reason);
  }
}
