import { createLocalFanout } from '../../src/fanout/local-fanout.js';
import { runFanoutContract } from '../contracts/fanout.contract.js';

runFanoutContract('in-process (single hub)', async (settings) => createLocalFanout(settings));
