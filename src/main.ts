import { startHub } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { describeFault } from './errors/boundary.js';
import { createLogger } from './logger.js';
import { loadUws, UwsUnavailableError } from './transport/uws.js';

/** Entry point: configuration → hub → serve until SIGINT/SIGTERM, then a graceful stop. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, process.argv.slice(2));
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`vigil: ${error.message}\nSee the configuration table in README.md.\n`);
      process.exit(2);
    }
    throw error;
  }
  try {
    loadUws();
  } catch (error) {
    // Several lines meant for a person installing Vigil, not a log line.
    if (error instanceof UwsUnavailableError) {
      process.stderr.write(`vigil: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const log = createLogger(config.LOG_LEVEL);
  let running;
  try {
    running = await startHub(config, log);
  } catch (error) {
    // Drivers put the URL they were given (with its password) into their messages: redacted here.
    log.fatal({ err: describeFault(error).message }, 'vigil could not start');
    process.exitCode = 1;
    return;
  }
  const hub = running;
  // The last resort: every entry has its own boundary, so reaching these is a bug to fix; it is
  // logged and counted (vigil_internal_errors_total{entry="process"}) and the hub keeps serving.
  process.on('unhandledRejection', (reason) => hub.faults.report('process', reason, { event: 'unhandledRejection' }));
  process.on('uncaughtException', (error) => hub.faults.report('process', error, { event: 'uncaughtException' }));
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down: closing clients, flushing writes');
    hub.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: describeFault(error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  // Before the logger exists (or past it): a redacted line on stderr instead of Node's raw stack trace.
  const fault = describeFault(error);
  process.stderr.write(`vigil: could not start: ${fault.stack ?? fault.message}\n`);
  process.exitCode = 1;
});
