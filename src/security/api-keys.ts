import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isNull, sql } from 'drizzle-orm';
import { resultRows, type VigilDb } from '../storage/database.js';
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

/** A principal and, for a ws-token, when it stops being valid (a WebSocket session ends then). */
export interface Credentials {
  readonly principal: Principal;
  readonly expiresAt: number | null;
}

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

export type RevokeOutcome = 'revoked' | 'not_found' | 'last_admin';

/** Serialises revocations that must leave an admin key (pg_advisory_xact_lock id). */
const REVOKE_LOCK = 0x76_69_67_6b;

export class ApiKeyStore {
  private keys = new Map<string, { key: ApiKey; hash: Buffer }>();
  private issued = false;
  /** Bumped by every change made here, so a reload that overlapped one is read again. */
  private generation = 0;
  private loadedFingerprint = '';
  private readonly revokedListeners: ((ids: readonly string[]) => void)[] = [];

  constructor(private readonly db: VigilDb) {}

  /**
   * Whether any key was ever created (revoked ones included). The rows of revoked keys stay, so
   * this is stored: once true, the hub never goes back to serving without keys (docs/security.md).
   */
  get everIssued(): boolean {
    return this.issued;
  }

  /** Called with the ids of keys that stopped being valid (revoked here, or found revoked by a reload). */
  onRevoked(listener: (ids: readonly string[]) => void): void {
    this.revokedListeners.push(listener);
  }

  /**
   * Reloads only when the table changed since the last load (one small aggregate query; a full load
   * of 1000 keys costs ~10 times more), so it can run every second on every instance.
   */
  async refresh(): Promise<void> {
    if ((await this.fingerprint()) !== this.loadedFingerprint) await this.load();
  }

  private async fingerprint(): Promise<string> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int`, revoked: sql<number>`count(${apiKeys.revokedAt})::int`, created: sql<string>`max(${apiKeys.createdAt})::text`, last: sql<string>`max(${apiKeys.revokedAt})::text` })
      .from(apiKeys);
    return `${row?.n}/${row?.revoked}/${row?.created}/${row?.last}`;
  }

  /** Loads the keys that are not revoked (call at start; `refresh` after changes by another process). */
  async load(): Promise<void> {
    const generation = this.generation;
    // Read before the rows: a change landing between the two shows as a new fingerprint next time.
    const fingerprint = await this.fingerprint();
    const rows = await this.db.select().from(apiKeys).where(isNull(apiKeys.revokedAt));
    // A key created or revoked here meanwhile may be missing from (or still in) what was read.
    if (generation !== this.generation) return this.load();
    this.loadedFingerprint = fingerprint;
    const previous = this.keys;
    this.keys = new Map();
    this.issued = this.issued || !fingerprint.startsWith('0/');
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
    const gone = [...previous.keys()].filter((id) => !this.keys.has(id));
    if (gone.length > 0) this.notifyRevoked(gone);
  }

  private notifyRevoked(ids: readonly string[]): void {
    for (const listener of this.revokedListeners) listener(ids);
  }

  get size(): number {
    return this.keys.size;
  }

  /** Creates a key; the returned secret is shown once and never stored. `first`: authentication just switched on. */
  async create(name: string, scopes: readonly Scope[], deviceIds: readonly string[] | null = null): Promise<{ key: ApiKey; token: string; first: boolean }> {
    const id = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12);
    const secret = randomBytes(32).toString('base64url');
    const token = `vgl_${id}_${secret}`;
    const [row] = await this.db
      .insert(apiKeys)
      .values({ id, name, keyHash: hashSecret(secret).toString('hex'), scopes: [...scopes], deviceIds: deviceIds ? [...deviceIds] : null })
      .returning();
    const key: ApiKey = { id, name, scopes: new Set(scopes), deviceIds: deviceIds ? new Set(deviceIds) : null, createdAt: row!.createdAt.getTime() };
    this.keys.set(id, { key, hash: hashSecret(secret) });
    this.generation++;
    const first = !this.issued;
    this.issued = true;
    return { key, token, first };
  }

  /**
   * Revokes a key. With `keepAdmin`, refuses ('last_admin') to revoke the last valid admin key not
   * limited to devices, so the keys stay manageable over the API; the check and the update run
   * under one lock, so two instances cannot each revoke one of the last two.
   */
  async revoke(id: string, keepAdmin = false): Promise<RevokeOutcome> {
    const outcome = await this.db.transaction(async (tx): Promise<RevokeOutcome> => {
      await tx.execute(sql`select pg_advisory_xact_lock(${REVOKE_LOCK})`);
      const unlimitedAdmin = sql`(scopes ? 'admin' and device_ids is null)`;
      const updated = await tx.execute(sql`
        update api_keys set revoked_at = now()
        where id = ${id} and revoked_at is null
          and (${!keepAdmin} or not ${unlimitedAdmin}
               or exists (select 1 from api_keys o where o.id <> ${id} and o.revoked_at is null and o.scopes ? 'admin' and o.device_ids is null))
        returning id`);
      if (resultRows<{ id: string }>(updated).length > 0) return 'revoked';
      const [row] = await tx.select({ revokedAt: apiKeys.revokedAt }).from(apiKeys).where(sql`id = ${id}`);
      return row === undefined || row.revokedAt !== null ? 'not_found' : 'last_admin';
    });
    this.generation++;
    if (outcome === 'revoked' && this.keys.delete(id)) this.notifyRevoked([id]);
    return outcome;
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
