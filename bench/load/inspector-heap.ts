import WebSocket from 'ws';

/**
 * The live heap of a process started with `--inspect=127.0.0.1:0`, measured the only exact way:
 * a full collection through the inspector protocol, then the used size. `logs` are the process's
 * output lines, where Node prints the inspector's address.
 */
export async function heapAfterGc(logs: readonly string[]): Promise<number> {
  const socket = await inspectorOf(logs);
  let next = 0;
  const call = (method: string) =>
    new Promise<Record<string, number>>((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method}`)), 30_000);
      const onMessage = (data: WebSocket.RawData) => {
        const reply = JSON.parse(data.toString()) as { id?: number; result?: Record<string, number> };
        if (reply.id !== id) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(reply.result ?? {});
      };
      socket.on('message', onMessage);
      socket.send(JSON.stringify({ id, method }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    const usage = await call('Runtime.getHeapUsage');
    return usage.usedSize!;
  } finally {
    socket.close();
  }
}

/** A connection to the inspector of a process started with `--inspect=127.0.0.1:0` (its address is in `logs`). */
async function inspectorOf(logs: readonly string[]): Promise<WebSocket> {
  const url = logs.join('\n').match(/Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/)?.[1];
  if (url === undefined) throw new Error('the process was not started with --inspect=127.0.0.1:0');
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return socket;
}

/** Writes a heap snapshot of the inspected process to `file` (through the inspector's command line API). */
export async function writeSnapshotOf(logs: readonly string[], file: string): Promise<void> {
  const socket = await inspectorOf(logs);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('inspector: no snapshot in 300 s')), 300_000);
      socket.on('message', (data: WebSocket.RawData) => {
        const reply = JSON.parse(data.toString()) as { id?: number; result?: { exceptionDetails?: unknown } };
        if (reply.id !== 1) return;
        clearTimeout(timer);
        if (reply.result?.exceptionDetails) reject(new Error(`inspector: ${JSON.stringify(reply.result.exceptionDetails)}`));
        else resolve();
      });
      socket.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression: `require('node:v8').writeHeapSnapshot(${JSON.stringify(file)})`, includeCommandLineAPI: true, awaitPromise: true } }));
    });
  } finally {
    socket.close();
  }
}
