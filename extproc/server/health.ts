/**
 * @module server/health
 * grpc.health.v1.Health for Kubernetes gRPC probes and Envoy health checks. Services: "" (the
 * whole server) and "envoy.service.ext_proc.v3.ExternalProcessor". Draining flips both to
 * NOT_SERVING before the server stops accepting streams, so probes take the pod out of
 * rotation first.
 */
import { status as GrpcStatus, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type Server } from '@grpc/grpc-js';
import { loadService } from './protocol.js';

type ServingStatus = 'SERVING' | 'NOT_SERVING';
interface CheckRequest {
  service?: string;
}

/** The health state and its gRPC service. */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<{ service: string; call: ServerWritableStream<CheckRequest, unknown> }>();

  constructor(services: readonly string[]) {
    for (const s of ['', ...services]) this.statuses.set(s, 'SERVING');
  }

  /** Sets every service's status and tells watchers. */
  setAll(status: ServingStatus): void {
    for (const s of this.statuses.keys()) this.statuses.set(s, status);
    for (const w of this.watchers) w.call.write({ status });
  }

  /** Adds the Health service to a gRPC server. */
  register(server: Server): void {
    server.addService(loadService('grpc/health/v1/health.proto', 'grpc.health.v1.Health'), {
      Check: (call: ServerUnaryCall<CheckRequest, unknown>, callback: sendUnaryData<unknown>) => {
        const status = this.statuses.get(call.request.service ?? '');
        if (!status) callback({ code: GrpcStatus.NOT_FOUND, details: `unknown service "${call.request.service}"` });
        else callback(null, { status });
      },
      Watch: (call: ServerWritableStream<CheckRequest, unknown>) => {
        const service = call.request.service ?? '';
        const watcher = { service, call };
        call.write({ status: this.statuses.get(service) ?? 'SERVICE_UNKNOWN' });
        this.watchers.add(watcher);
        call.on('cancelled', () => this.watchers.delete(watcher));
      },
    });
  }

  /** Ends open Watch streams (at shutdown). */
  closeWatchers(): void {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }
}
