import { runInsightsContract } from '../contracts/insights.contract.js';

runInsightsContract('embedded');
