import { runHubContract, CONTRACT_HUB_SETTINGS } from '../contracts/hub.contract.js';
import { startTestHub } from '../helpers/hub.js';

runHubContract('services: Mosquitto, PostgreSQL, Redis', () => startTestHub('services', CONTRACT_HUB_SETTINGS));
