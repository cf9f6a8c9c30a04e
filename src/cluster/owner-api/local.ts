import type { AnswerOf, FleetAnswers, FleetOperation, OwnerAnswer, OwnerOperation, RequestOf } from './operations.js';
import { TypedOwnerCalls } from './typed-calls.js';

/** A single instance: it owns every device, so each call runs its own service, unserialised. */
export class LocalOwnerApi extends TypedOwnerCalls {
  /** Nobody else asks a single instance. */
  async answer(): Promise<string | null> {
    return null;
  }

  isLocal(): boolean {
    return true;
  }

  byOwner(ids: readonly string[]): { local: string[]; remote: string[][] } {
    return { local: [...ids], remote: [] };
  }

  protected async toOwner<K extends OwnerOperation>(op: K, deviceId: string, body: RequestOf<K>): Promise<OwnerAnswer<AnswerOf<K>>> {
    return { ok: true, value: await this.services.run(op, deviceId, body) };
  }

  protected async toAll<K extends FleetOperation>(op: K, body: RequestOf<K>): Promise<FleetAnswers<AnswerOf<K>>> {
    return { answers: [await this.services.run(op, '*', body)], missing: 0 };
  }
}
