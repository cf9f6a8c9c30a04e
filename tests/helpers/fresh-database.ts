import postgres from 'postgres';
import { SERVICES, randomSuffix } from './services.js';

/**
 * Throwaway PostgreSQL databases for tests whose data must not leak into others' (API keys, for
 * one, switch authentication on for every hub sharing the database). Drop them with `dropAll`.
 */
export function freshDatabases() {
  const admin = postgres(SERVICES.postgresAdminUrl, { max: 1, onnotice: () => undefined });
  const created: string[] = [];
  return {
    async create(): Promise<string> {
      const name = `vigil_fresh_${randomSuffix()}`;
      await admin.unsafe(`create database ${name}`);
      created.push(name);
      const url = new URL(SERVICES.postgresAdminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async dropAll(): Promise<void> {
      for (const name of created) await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
