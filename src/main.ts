import { startHub } from './app.js';
import { ConfigError, loadConfig } from './config.js';
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
    log.fatal({ err: (error as Error).message }, 'vigil could not start');
    process.exitCode = 1;
    return;
  }
  const hub = running;
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
        log.error({ err: (error as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

void main();
