import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { ApiKeyStore, SCOPES, type Scope } from '../security/api-keys.js';
import { describeFault } from '../errors/boundary.js';
import { openDatabase, type Database } from '../storage/database.js';
import { createKeyBody } from '../transport/http/admin-routes.js';

/**
 * `npm run keys -- create --scope read,command --name dashboard [--devices d1,d2]`,
 * `npm run keys -- list`, `npm run keys -- revoke <id>`. Uses DATABASE_URL (or PGlite in DATA_DIR,
 * which only one process may open: while the hub runs on it, this refuses, naming the hub's pid and
 * the REST routes to use instead: POST /admin/keys, GET /admin/keys, DELETE /admin/keys/{id}).
 */
const USAGE = `usage: npm run keys -- <command> [options]

commands:
  create --scope ${SCOPES.join('|')}[,…] --name NAME [--devices id,id]
                 create a key (its secret is printed once)
  list           list the keys that are not revoked
  revoke ID      revoke a key (the CLI may revoke the last admin key)
  help           print this text (also --help, -h)

DATABASE_URL (or DATA_DIR for PGlite) names the database, as for the hub.
Exit codes: 0 done, 2 usage error or the database could not be opened.
`;

/** A usage error: one line on stderr and exit code 2 (no stack trace), before any database is opened. */
const usageError = (message: string): never => {
  process.stderr.write(`keys: ${message} (see npm run keys -- --help)\n`);
  process.exit(2);
};

const COMMANDS = new Set(['create', 'list', 'revoke', 'help']);
let parsed: ReturnType<typeof parseKeysArgs>;
try {
  parsed = parseKeysArgs(process.argv.slice(2));
} catch (error) {
  usageError(argumentError(error));
}
const { positionals, values } = parsed!;
if (values.help || positionals[0] === 'help') {
  process.stdout.write(USAGE);
  process.exit(0);
}
const [command, arg] = positionals;
if (command === undefined) usageError('no command given: create, list or revoke');
if (!COMMANDS.has(command!)) usageError(`unknown command "${command!.slice(0, 40)}": create, list or revoke`);
if (command === 'revoke' && !arg) usageError('revoke needs a key id: revoke ID');
if (positionals.length > (command === 'revoke' ? 2 : 1)) usageError(`unexpected argument "${positionals.at(-1)!.slice(0, 40)}"`);

/**
 * `create`'s request, checked by the schema POST /admin/keys uses (name 1-100 characters, device ids
 * 1-128 of [A-Za-z0-9._:-], at most 10,000), before any database is opened: the CLI must not store
 * a key the API would refuse (one limited to "bad/id", say, which no device can ever match).
 */
function createRequest() {
  const scopes = [...new Set((values.scope ?? '').split(',').filter(Boolean))];
  const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || bad.length > 0 || !values.name) {
    return usageError(`usage: create --scope ${SCOPES.join('|')}[,…] --name NAME [--devices id,id]${bad.length ? ` (unknown scope: ${bad.join(', ')})` : ''}`);
  }
  const checked = createKeyBody.safeParse({ name: values.name, scopes, ...(values.devices === undefined ? {} : { device_ids: values.devices.split(',') }) });
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    const where = issue.path[0] === 'device_ids' ? `--devices${issue.path.length > 1 ? ` (entry ${String(issue.path[1])})` : ''}` : `--${String(issue.path[0] ?? 'name')}`;
    return usageError(`${where}: ${issue.path[0] === 'device_ids' && issue.path.length > 1 ? 'device ids are 1-128 characters of [A-Za-z0-9._:-]' : issue.message}`);
  }
  return checked.data;
}
const request = command === 'create' ? createRequest() : null;

/**
 * parseArgs's errors as one short line of our own: its text for an unknown option goes on about
 * positionals after `--` with a quote it never closes. The option is quoted from its message (as the
 * user typed it, cut at 40 characters), never the rest of the command line.
 */
function argumentError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // "Unknown option '--bogus'", "Option '--scope <value>' argument missing", "Option '-h, --help' does not take an argument"
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const option = (quoted.split(/[ ,]+/).filter((w) => w.startsWith('-')).at(-1) ?? '').slice(0, 40);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return /argument missing/.test(message) ? `option ${option} needs a value` : `option ${option} takes no value`;
  return message.split(/\.\s|\n/)[0]!.slice(0, 120);
}

function parseKeysArgs(args: string[]) {
  return parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { scope: { type: 'string' }, name: { type: 'string' }, devices: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
}
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
  if (request !== null) {
    const created = await keys.create(request.name, request.scopes as Scope[], request.device_ids ?? null);
    process.stdout.write(`created key ${created.key.id} (${request.scopes.join(',')}) for ${request.name}\n${created.token}\nKeep it now: only its hash is stored.\n`);
    if (created.first) process.stderr.write('keys: the first key: the hub now requires a key, and keeps requiring one even if every key is revoked\n');
  } else if (command === 'list') {
    for (const k of keys.list()) process.stdout.write(`${k.id}  ${k.name}  ${[...k.scopes].join(',')}${k.deviceIds ? `  devices:${[...k.deviceIds].join(',')}` : ''}\n`);
  } else if (command === 'revoke') {
    // The CLI may revoke the last admin key (the API refuses): it is the way back in, and the hub
    // stays closed meanwhile since authentication never switches off once a key existed.
    if ((await keys.revoke(arg!)) === 'revoked') process.stdout.write(`revoked ${arg}\n`);
    else fail(`no key ${arg}`);
  }
} finally {
  await database.close();
}
