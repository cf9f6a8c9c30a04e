import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { ApiKeyStore, SCOPES, type Scope } from '../security/api-keys.js';
import { describeFault } from '../errors/boundary.js';
import { openDatabase, type Database } from '../storage/database.js';

/**
 * `npm run keys -- create --scope read,command --name dashboard [--devices d1,d2]`,
 * `npm run keys -- list`, `npm run keys -- revoke <id>`. Uses DATABASE_URL (or PGlite in DATA_DIR,
 * which only one process may open: while the hub runs on it, this refuses, naming the hub's pid and
 * the REST routes to use instead: POST /admin/keys, GET /admin/keys, DELETE /admin/keys/{id}).
 */
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { scope: { type: 'string' }, name: { type: 'string' }, devices: { type: 'string' } },
});
const [command, arg] = positionals;
const config = loadConfig(process.env);
let database: Database;
try {
  database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, holder: 'npm run keys' });
} catch (error) {
  process.stderr.write(`keys: ${describeFault(error).message}\n`);
  process.exit(2);
}
const keys = new ApiKeyStore(database.db);
await keys.load();
const fail = (message: string) => {
  process.stderr.write(`keys: ${message}\n`);
  process.exitCode = 2;
};
try {
  if (command === 'create') {
    const scopes = (values.scope ?? '').split(',').filter(Boolean);
    const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (scopes.length === 0 || bad.length > 0 || !values.name) {
      fail(`usage: create --scope ${SCOPES.join('|')}[,…] --name NAME [--devices id,id]${bad.length ? ` (unknown scope: ${bad.join(', ')})` : ''}`);
    } else {
      const created = await keys.create(values.name, scopes as Scope[], values.devices ? values.devices.split(',') : null);
      process.stdout.write(`created key ${created.key.id} (${scopes.join(',')}) for ${values.name}\n${created.token}\nKeep it now: only its hash is stored.\n`);
      if (created.first) process.stderr.write('keys: the first key: the hub now requires a key, and keeps requiring one even if every key is revoked\n');
    }
  } else if (command === 'list') {
    for (const k of keys.list()) process.stdout.write(`${k.id}  ${k.name}  ${[...k.scopes].join(',')}${k.deviceIds ? `  devices:${[...k.deviceIds].join(',')}` : ''}\n`);
  } else if (command === 'revoke' && arg) {
    // The CLI may revoke the last admin key (the API refuses): it is the way back in, and the hub
    // stays closed meanwhile since authentication never switches off once a key existed.
    if ((await keys.revoke(arg)) === 'revoked') process.stdout.write(`revoked ${arg}\n`);
    else fail(`no key ${arg}`);
  } else fail('usage: keys create|list|revoke …');
} finally {
  await database.close();
}
