import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { eq, isNull } from 'drizzle-orm';
import type { VigilDb } from '../storage/database.js';
import { apiKeys } from '../storage/schema/index.js';

export const SCOPES = ['read', 'ingest', 'command', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  readonly id: string;
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
  /** When set, the key may only read these devices. */
  readonly deviceIds: ReadonlySet<string> | null;
  readonly createdAt: number;
}

/** Who a request acts as: a key, or anonymous (only where the hub allows it). */
export type Principal = { readonly kind: 'key'; readonly key: ApiKey } | { readonly kind: 'anonymous' };

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

/**
 * API keys look like `vgl_<id>_<secret>`: the id finds the record, the secret (32 random bytes) is
 * stored only as its SHA-256 and compared in constant time. A fast hash is enough for a random
 * 256-bit secret (nothing to brute-force); slow hashes are for passwords people choose.
 */
export function parseKey(presented: string): { id: string; secret: string } | null {
  const match = /^vgl_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/.exec(presented);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

export class ApiKeyStore {
  private readonly keys = new Map<string, { key: ApiKey; hash: Buffer }>();

  constructor(private readonly db: VigilDb) {}

  /** Loads the keys that are not revoked (call at start and after changes by another process). */
  async load(): Promise<void> {
    const rows = await this.db.select().from(apiKeys).where(isNull(apiKeys.revokedAt));
    this.keys.clear();
    for (const row of rows) {
      this.keys.set(row.id, {
        hash: Buffer.from(row.keyHash, 'hex'),
        key: {
          id: row.id,
          name: row.name,
          scopes: new Set(row.scopes as Scope[]),
          deviceIds: row.deviceIds ? new Set(row.deviceIds) : null,
          createdAt: row.createdAt.getTime(),
        },
      });
    }
  }

  get size(): number {
    return this.keys.size;
  }

  /** Creates a key; the returned secret is shown once and never stored. */
  async create(name: string, scopes: readonly Scope[], deviceIds: readonly string[] | null = null): Promise<{ key: ApiKey; token: string }> {
    const id = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12);
    const secret = randomBytes(32).toString('base64url');
    const token = `vgl_${id}_${secret}`;
    const [row] = await this.db
      .insert(apiKeys)
      .values({ id, name, keyHash: hashSecret(secret).toString('hex'), scopes: [...scopes], deviceIds: deviceIds ? [...deviceIds] : null })
      .returning();
    const key: ApiKey = { id, name, scopes: new Set(scopes), deviceIds: deviceIds ? new Set(deviceIds) : null, createdAt: row!.createdAt.getTime() };
    this.keys.set(id, { key, hash: hashSecret(secret) });
    return { key, token };
  }

  async revoke(id: string): Promise<boolean> {
    const rows = await this.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, id)).returning({ id: apiKeys.id });
    this.keys.delete(id);
    return rows.length > 0;
  }

  get(id: string): ApiKey | null {
    return this.keys.get(id)?.key ?? null;
  }

  list(): ApiKey[] {
    return [...this.keys.values()].map((k) => k.key);
  }

  /** The key a presented token belongs to, or null. Constant-time on the secret. */
  verify(presented: string): ApiKey | null {
    const parsed = parseKey(presented);
    if (parsed === null) return null;
    const entry = this.keys.get(parsed.id);
    const candidate = hashSecret(parsed.secret);
    // Compare even when the id is unknown, so timing does not tell which ids exist.
    const expected = entry?.hash ?? Buffer.alloc(candidate.length);
    return timingSafeEqual(candidate, expected) && entry !== undefined ? entry.key : null;
  }
}

export function allows(principal: Principal, scope: Scope): boolean {
  if (principal.kind === 'anonymous') return true;
  return principal.key.scopes.has('admin') || principal.key.scopes.has(scope);
}

/** Whether the principal may read this device (keys can be limited to a list of devices). */
export function mayRead(principal: Principal, deviceId: string): boolean {
  return principal.kind === 'anonymous' || principal.key.deviceIds === null || principal.key.deviceIds.has(deviceId);
}
