import type { Redis } from 'ioredis';

/**
 * A job that must run once across instances takes a lease first: SET NX with an expiry, so a
 * crashed holder frees it by itself. Resolves true for the instance that got it.
 */
export async function takeLease(redis: Redis, key: string, holder: string, ttlMs: number): Promise<boolean> {
  return (await redis.set(key, holder, 'PX', ttlMs, 'NX')) === 'OK';
}
