// The dashboard's live data layer: the hub's browser client (public/vigil-client.js: reconnect with
// backoff, resume by since_seq/epoch and since_fleet_seq/epoch, duplicates dropped, the ws-token
// renewed on the open connection) given the dashboard's credentials and status wording. The views
// call only subscribeFleet, subscribeDevice, ackAlert and onStatus.
import { ApiError, wsToken } from './api.js';
import { createVigilClient, VigilError } from './vigil-client.js';

/** Closes that end the session for good over its credentials: the page asks for a key. */
const REFUSED = {
  4401: 'The API key was refused.',
  4403: 'The API key may not read the fleet.',
  4410: 'The API key was revoked.',
};

/** POST /ws-token with the stored key (none: the hub needs none); its 401 means the key is refused. */
async function token() {
  try {
    return await wsToken();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw new VigilError('invalid_token', REFUSED[4401]);
    throw error; // the hub is away (restarting): the client retries with backoff
  }
}

export function createLive({ onRefused }) {
  const client = createVigilClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    token,
    // On the upgrade, as before the client: the socket is authenticated from its start.
    tokenInUrl: true,
    reconnect: { minMs: 1000, maxMs: 30_000 },
  });
  client.onStatus((status, detail) => {
    if (status === 'closed' && detail !== null && REFUSED[detail.code]) onRefused(REFUSED[detail.code]);
  });
  return {
    subscribeFleet: client.subscribeFleet,
    subscribeDevice: client.subscribeDevice,
    ackAlert: client.ackAlert,
    /** fn({ state: 'live' | 'down', detail }): the header's wording. */
    onStatus(fn) {
      return client.onStatus((status, detail) => {
        if (status === 'open') fn({ state: 'live', detail: 'live' });
        else if (status === 'reconnecting' && detail?.retryInMs !== undefined) fn({ state: 'down', detail: `reconnecting in ${Math.max(1, Math.round(detail.retryInMs / 1000))} s` });
        else if (status === 'closed') fn({ state: 'down', detail: REFUSED[detail?.code] ? 'signed out' : `closed by the hub (${detail?.code}); reload the page` });
      });
    },
    /** Closed for good (refused credentials): a new key needs a new one of these. */
    get closed() {
      return client.status === 'closed';
    },
  };
}
