import { runCommandsContract } from '../contracts/commands.contract.js';

runCommandsContract('services');
