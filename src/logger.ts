import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; secrets are redacted wherever they may appear in a logged object. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'vigil' },
    redact: { paths: ['*.password', '*.token', '*.apiKey', '*.key', 'password', 'token', 'apiKey', 'key', '*.url'], censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
