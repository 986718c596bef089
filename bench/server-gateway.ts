// "Ours": the gateway's ext_proc server with no stages configured (the pass-through pipeline),
// started through its public API. Runs as a child process of bench/extproc-overhead.ts
// (see child-protocol.ts); the parent starts it only when extproc/app exists.
// child-protocol first: it switches tsx's source maps off before the gateway's modules load.
import { runChild, type ServerHandle } from './child-protocol.js';
import { startGateway } from '../extproc/app.js';
import { parseConfig } from '../extproc/config/load.js';

async function startOurs(): Promise<ServerHandle> {
  const gw = await startGateway({
    config: parseConfig({ server: { host: '127.0.0.1', port: 0 }, logging: { level: 'warn' } }),
  });
  return { port: gw.port, close: () => gw.close() };
}

runChild('ours', startOurs);
