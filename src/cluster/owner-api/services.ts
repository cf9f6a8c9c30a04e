import { OPERATIONS, type AnswerOf, type OperationName, type OwnerHandlers, type RequestOf } from './operations.js';

/**
 * This instance's own answers to the owner API, served by the parts that hold them (the hub, the
 * device and command views, the rule store, the fleet table, the health reads, the ingest entry),
 * each handing over its typed handlers once it exists. Both the local calls and the answers to other
 * instances run through here.
 */
export class OwnerServices {
  private readonly handlers: Partial<OwnerHandlers> = {};

  /** Hands over the handlers of some operations (a later one for the same operation replaces it). */
  serve(part: Partial<OwnerHandlers>): void {
    Object.assign(this.handlers, part);
  }

  /** Operations nobody serves yet: the composition root checks none is left before it answers anyone. */
  unserved(): OperationName[] {
    return (Object.keys(OPERATIONS) as OperationName[]).filter((op) => this.handlers[op] === undefined);
  }

  async run<K extends OperationName>(op: K, deviceId: string, body: RequestOf<K>): Promise<AnswerOf<K>> {
    const handler = this.handlers[op] as ((deviceId: string, body: RequestOf<K>) => AnswerOf<K> | Promise<AnswerOf<K>>) | undefined;
    if (handler === undefined) throw new Error(`owner API operation ${op} is not served on this instance`);
    return handler(deviceId, body);
  }
}
