// Loads the ext_proc v3 service definition from the repository's protos with the options the
// project uses everywhere, and declares the few message shapes the bench touches. Independent of
// extproc/server on purpose: the floor server and the Envoy-like driver must not share the
// gateway's code, or the comparison would measure our code against itself.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

/** The repository root: the nearest folder above this file with `protos/` (also from dist-bench/bench/). */
export const REPO_ROOT = ((): string => {
  let dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  while (!existsSync(path.join(dir, 'protos')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
export const PROTO_DIR = path.join(REPO_ROOT, 'protos');
export const SERVICE_NAME = 'envoy.service.ext_proc.v3.ExternalProcessor';
export const PROCESS_PATH = `/${SERVICE_NAME}/Process`;

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export type BodySendMode =
  | 'NONE'
  | 'STREAMED'
  | 'BUFFERED'
  | 'BUFFERED_PARTIAL'
  | 'FULL_DUPLEX_STREAMED'
  | 'GRPC';
export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';

export interface ProcessingModeMsg {
  request_header_mode?: HeaderSendMode;
  response_header_mode?: HeaderSendMode;
  request_body_mode?: BodySendMode;
  response_body_mode?: BodySendMode;
  request_trailer_mode?: HeaderSendMode;
  response_trailer_mode?: HeaderSendMode;
}

export interface HeaderValueMsg {
  key: string;
  value?: string;
  raw_value?: Buffer;
}

export interface HttpHeadersMsg {
  headers?: { headers?: HeaderValueMsg[] };
  end_of_stream?: boolean;
}

export interface HttpBodyMsg {
  body?: Buffer;
  end_of_stream?: boolean;
}

/** Names of the `ProcessingRequest.request` oneof members (and of the matching response members). */
export type PhaseName =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers';

export interface ProcessingRequestMsg {
  request_headers?: HttpHeadersMsg;
  response_headers?: HttpHeadersMsg;
  request_body?: HttpBodyMsg;
  response_body?: HttpBodyMsg;
  request_trailers?: { trailers?: { headers?: HeaderValueMsg[] } };
  response_trailers?: { trailers?: { headers?: HeaderValueMsg[] } };
  /** Virtual oneof discriminator (proto-loader `oneofs: true`), present on decoded messages. */
  request?: PhaseName;
  protocol_config?: {
    request_body_mode?: BodySendMode;
    response_body_mode?: BodySendMode;
    send_body_without_waiting_for_header_response?: boolean;
  };
  observability_mode?: boolean;
}

export interface ProcessingResponseMsg {
  /** Virtual oneof discriminator on decoded messages. */
  response?: PhaseName | 'immediate_response' | 'streamed_immediate_response';
  request_headers?: object;
  response_headers?: object;
  request_body?: object;
  response_body?: object;
  request_trailers?: object;
  response_trailers?: object;
  immediate_response?: { status?: { code?: string }; details?: string };
  mode_override?: ProcessingModeMsg;
  override_message_timeout?: object;
  dynamic_metadata?: object;
}

export interface ExtProcDefinitions {
  packageDefinition: protoLoader.PackageDefinition;
  service: protoLoader.ServiceDefinition;
  process: protoLoader.MethodDefinition<ProcessingRequestMsg, ProcessingResponseMsg>;
}

export function loadExtProc(): ExtProcDefinitions {
  const packageDefinition = protoLoader.loadSync(
    'envoy/service/ext_proc/v3/external_processor.proto',
    LOADER_OPTIONS,
  );
  const service = packageDefinition[SERVICE_NAME] as protoLoader.ServiceDefinition | undefined;
  if (!service?.Process) throw new Error(`${SERVICE_NAME}/Process not found in ${PROTO_DIR}`);
  const process = service.Process as unknown as protoLoader.MethodDefinition<
    ProcessingRequestMsg,
    ProcessingResponseMsg
  >;
  return { packageDefinition, service, process };
}
