import { runPresenceHubContract } from '../contracts/presence-hub.contract.js';

runPresenceHubContract('services');
