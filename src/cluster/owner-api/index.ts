import type { Metrics } from '../../metrics.js';
import { LocalOwnerApi } from './local.js';
import { ClusterOwnerApi, type ClusterPort } from './proxy.js';
import { OwnerServices } from './services.js';
import type { TypedOwnerCalls } from './typed-calls.js';

export { OPERATIONS, type OwnerAnswer, type FleetAnswers, type OwnerApi, type OwnerHandlers, type OperationName } from './operations.js';
export type { ClusterPort } from './proxy.js';
export type { CommandView, SubmittedCommand, AlertView, OwnedRows, FleetPart, OwnerBody, StatusOutcome } from './shapes.js';

/** The owner API as the hub holds it: typed calls, the answers this instance serves, and the answering side. */
export type HubOwnerApi = TypedOwnerCalls;

/** One instance: every call runs here. A cluster: calls about other instances' devices go over the bus (proxy.ts). */
export function createOwnerApi(cluster: ClusterPort | undefined, metrics: Metrics): HubOwnerApi {
  const services = new OwnerServices();
  return cluster === undefined ? new LocalOwnerApi(services) : new ClusterOwnerApi(services, cluster, metrics);
}
