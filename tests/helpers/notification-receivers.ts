import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * HTTP receivers for notification tests, real servers on 127.0.0.1: a webhook that checks each
 * delivery's signature as a user's would (the code in docs/notifications.md, written again here,
 * not imported from the hub), and an Alertmanager-compatible `POST /api/v2/alerts`. Either can be
 * taken down (connections refused) and brought back on the same port.
 */
abstract class Receiver {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;
  /** Milliseconds each answer waits (widens the window in which two instances could race). */
  delayMs = 0;
  /** Set: every request is answered with this status instead (a receiver that is up but failing). */
  failWith: number | null = null;
  requests = 0;

  async up(): Promise<void> {
    const server = createServer((req, res) => {
      this.requests++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        setTimeout(() => (this.failWith === null ? this.handle(req, body, res) : res.writeHead(this.failWith).end()), this.delayMs);
      });
    });
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Down: the port refuses connections until `up()`. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected abstract handle(req: IncomingMessage, body: string, res: ServerResponse): void;
}

export interface ReceivedEvent {
  readonly id: string;
  readonly type: string;
  readonly subject: string;
  readonly data: Record<string, unknown>;
  readonly event: Record<string, unknown>;
  readonly contentType: string | undefined;
}

/** The receiver's side of a Standard Webhooks signature (docs/notifications.md, "Verifying"). */
export function verifySignature(secret: string, headers: IncomingMessage['headers'], body: string, toleranceS = 300): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceS) return false;
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
  const expected = Buffer.from(createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64'));
  return signatures.split(' ').some((s) => {
    const [version, signature] = s.split(',');
    if (version !== 'v1' || signature === undefined) return false;
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export class WebhookReceiver extends Receiver {
  /** Every delivery accepted, in arrival order (a duplicate would appear twice). */
  readonly deliveries: ReceivedEvent[] = [];
  /** Requests refused for a bad or missing signature. */
  badSignatures = 0;

  constructor(private readonly secret: string) {
    super();
  }

  protected handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    if (!verifySignature(this.secret, req.headers, body)) {
      this.badSignatures++;
      res.writeHead(401).end();
      return;
    }
    const event = JSON.parse(body) as Record<string, unknown>;
    this.deliveries.push({
      id: String(event.id),
      type: String(event.type),
      subject: String(event.subject),
      data: event.data as Record<string, unknown>,
      event,
      contentType: req.headers['content-type'],
    });
    res.writeHead(204).end();
  }

  count(id: string): number {
    return this.deliveries.filter((d) => d.id === id).length;
  }

  ofSubject(subject: string): ReceivedEvent[] {
    return this.deliveries.filter((d) => d.subject === subject);
  }
}

export interface PostedAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly startsAt: string;
  readonly endsAt?: string;
  readonly generatorURL?: string;
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Alertmanager's API v2 checks, the ones that make it answer 400: labels present, names valid, times parse. */
function invalidAlert(a: unknown): string | null {
  if (typeof a !== 'object' || a === null) return 'not an object';
  const alert = a as Record<string, unknown>;
  const labels = alert.labels as Record<string, unknown> | undefined;
  if (typeof labels !== 'object' || labels === null || Object.keys(labels).length === 0) return 'labels missing';
  for (const [name, value] of Object.entries(labels)) if (!LABEL_NAME.test(name) || typeof value !== 'string' || value === '') return `bad label ${name}`;
  for (const [name, value] of Object.entries((alert.annotations as Record<string, unknown> | undefined) ?? {})) if (!LABEL_NAME.test(name) || typeof value !== 'string') return `bad annotation ${name}`;
  for (const field of ['startsAt', 'endsAt'] as const) if (alert[field] !== undefined && Number.isNaN(Date.parse(String(alert[field])))) return `bad ${field}`;
  if (alert.generatorURL !== undefined && !URL.canParse(String(alert.generatorURL))) return 'bad generatorURL';
  return null;
}

export class AlertmanagerReceiver extends Receiver {
  /** Every alert of every accepted post, in arrival order. */
  readonly posted: PostedAlert[] = [];
  invalid = 0;

  protected handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    if (req.method !== 'POST' || req.url !== '/api/v2/alerts' || !req.headers['content-type']?.startsWith('application/json')) {
      res.writeHead(404).end();
      return;
    }
    let alerts: unknown;
    try {
      alerts = JSON.parse(body);
    } catch {
      alerts = null;
    }
    if (!Array.isArray(alerts) || alerts.some((a) => invalidAlert(a) !== null)) {
      this.invalid++;
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'invalid alerts' }));
      return;
    }
    this.posted.push(...(alerts as PostedAlert[]));
    res.writeHead(200).end();
  }

  ofDevice(deviceId: string): PostedAlert[] {
    return this.posted.filter((a) => a.labels.device_id === deviceId);
  }
}

export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
