import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';

/** The broker's ceiling: an MQTT.js subscriber that only counts. Prints {"received","seconds"} once `expect` arrived or it went idle. */
const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    prefix: { type: 'string', default: 'devices' },
    qos: { type: 'string', default: '0' },
    expect: { type: 'string', default: '100000' },
    'idle-ms': { type: 'string', default: '3000' },
  },
});
const expected = Number(values.expect);
const client = await connectAsync(values.url!, { clientId: `vigil-bench-bare-${process.pid}`, clean: true, protocolVersion: 5, properties: { receiveMaximum: 1000 } });
await client.subscribeAsync(`${values.prefix}/+/telemetry`, { qos: values.qos === '1' ? 1 : 0 });
let received = 0;
let first = 0;
let last = 0;
let idle: NodeJS.Timeout | undefined;
const finish = () => {
  process.stdout.write(`${JSON.stringify({ received, seconds: (last - first) / 1000 })}\n`);
  process.exit(0);
};
client.on('message', () => {
  const now = performance.now();
  if (received++ === 0) first = now;
  last = now;
  clearTimeout(idle);
  if (received >= expected) finish();
  idle = setTimeout(finish, Number(values['idle-ms']));
});
process.stdout.write('ready\n');
