import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; secrets are redacted wherever they may appear in a logged object. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'vigil' },
    redact: { paths: ['*.password', '*.token', '*.apiKey', 'password', 'token', 'apiKey', '*.url'], censor: '[redacted]' },
  });
}
