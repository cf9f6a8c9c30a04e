import { runHubContract, CONTRACT_HUB_SETTINGS } from '../contracts/hub.contract.js';
import { startTestHub } from '../helpers/hub.js';

runHubContract('embedded: aedes, PGlite, in-process presence', () => startTestHub('embedded', CONTRACT_HUB_SETTINGS));
