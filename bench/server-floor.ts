// The floor: a minimal no-op ext_proc server written for the bench (grpc-js + proto-loader).
// Answers every ProcessingRequest with the matching empty CONTINUE response and nothing else.
// Runs as a child process of bench/extproc-overhead.ts (see child-protocol.ts).
// child-protocol first: it switches tsx's source maps off before other modules load.
import { runChild, type ServerHandle } from './child-protocol.js';
import * as grpc from '@grpc/grpc-js';
import { loadExtProc, type ProcessingRequestMsg, type ProcessingResponseMsg } from './ext-proc-proto.js';

const CONTINUE: Record<string, ProcessingResponseMsg> = {
  request_headers: { request_headers: {} },
  response_headers: { response_headers: {} },
  request_body: { request_body: {} },
  response_body: { response_body: {} },
  request_trailers: { request_trailers: {} },
  response_trailers: { response_trailers: {} },
};

export async function startFloor(host = '127.0.0.1', port = 0): Promise<ServerHandle> {
  const { service } = loadExtProc();
  const server = new grpc.Server();
  server.addService(service, {
    Process(call: grpc.ServerDuplexStream<ProcessingRequestMsg, ProcessingResponseMsg>) {
      call.on('data', (req: ProcessingRequestMsg) => {
        const resp = req.request ? CONTINUE[req.request] : undefined;
        if (resp) call.write(resp);
      });
      call.on('end', () => call.end());
      // Envoy ends every stream with half-close + RST (CANCELLED): normal, nothing to do.
      call.on('error', () => {});
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
}

runChild(process.env.BENCH_IMPL_LABEL ?? 'floor', () => startFloor());
