import { runHubContract, CONTRACT_HUB_SETTINGS } from '../contracts/hub.contract.js';
import { startTestHub } from '../helpers/hub.js';
import { randomSuffix } from '../helpers/services.js';

// The whole contract again with cluster mode on (one instance): shared subscription, ownership
// routing, Redis fan-out and Redis history must keep every promise the single-instance hub makes.
runHubContract('cluster mode: shared subscription, Redis fan-out and history', () =>
  startTestHub('services', { ...CONTRACT_HUB_SETTINGS, CLUSTER_ENABLED: 'true', CLUSTER_INSTANCE_ID: `solo-${randomSuffix()}` }),
);
