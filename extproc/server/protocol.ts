/**
 * @module server/protocol
 * Loads our ext_proc v3 and gRPC health protos (protos/) and describes the decoded message
 * shapes. Only server/ sees these types; stages see the pipeline's own types.
 */
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { packageRoot } from '../version.js';
import type { PackedHeaders } from '../pipeline/headers.js';
import { decodeProcessingRequest } from './wireDecode.js';
import { encodeProcessingResponse } from './wireEncode.js';

/** proto-loader options: field names as in the .proto, enums as names, only fields on the wire. */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [join(packageRoot, 'protos')],
};

/** Loads a service definition from protos/. */
export function loadService(file: string, service: string): ServiceDefinition {
  const pkg = protoLoader.loadSync(file, protoLoaderOptions);
  const def = pkg[service];
  if (!def || !('Process' in def || 'Check' in def)) throw new Error(`service ${service} not found in ${file}`);
  return def as unknown as ServiceDefinition;
}

/** A google.protobuf.Value as proto-loader decodes it (oneof `kind`). */
export interface PbValue {
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
  nullValue?: string | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: PbStruct;
  listValue?: { values?: PbValue[] };
}

/** A google.protobuf.Struct as proto-loader decodes it. */
export interface PbStruct {
  fields?: Record<string, PbValue>;
}

export interface PbHeaderValue {
  key?: string;
  value?: string;
  raw_value?: Buffer;
}

export interface PbHttpHeaders {
  headers?: { headers?: PbHeaderValue[] };
  /** The header block as server/wireDecode gives it (instead of `headers`). */
  packed?: PackedHeaders;
  end_of_stream?: boolean;
}

export interface PbHttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
}

/** Kinds of ProcessingRequest (the `request` oneof). */
export type RequestKind =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers';

/** envoy.service.ext_proc.v3.ProcessingRequest, decoded. */
export interface PbProcessingRequest {
  request?: RequestKind;
  request_headers?: PbHttpHeaders;
  response_headers?: PbHttpHeaders;
  request_body?: PbHttpBody;
  response_body?: PbHttpBody;
  request_trailers?: object;
  response_trailers?: object;
  metadata_context?: { filter_metadata?: Record<string, PbStruct> };
  attributes?: Record<string, PbStruct>;
  observability_mode?: boolean;
  protocol_config?: {
    request_body_mode?: string;
    response_body_mode?: string;
    send_body_without_waiting_for_header_response?: boolean;
  };
}

/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode, for encoding. */
export interface PbProcessingMode {
  request_header_mode?: 'DEFAULT' | 'SEND' | 'SKIP';
  response_header_mode?: 'DEFAULT' | 'SEND' | 'SKIP';
  request_body_mode?: string;
  response_body_mode?: string;
}

/** envoy.service.ext_proc.v3.ProcessingResponse, for encoding (an object, or pre-encoded bytes). */
export type PbProcessingResponse = Record<string, unknown> | Buffer;

/** Stands for a message whose bytes did not decode as a ProcessingRequest. */
export const UNDECODABLE: PbProcessingRequest = Object.freeze({});

/**
 * The ext_proc service definition with our own codecs in front of protobufjs: a response given
 * as a Buffer is sent as is (constant answers are encoded once, at start-up), other answers are
 * encoded by server/wireEncode and requests decoded by server/wireDecode (protobufjs handles what
 * either does not know), and a request that fails to decode becomes `UNDECODABLE` instead of
 * failing the whole gRPC call, so the stream can be closed the way Envoy understands (see
 * processStream).
 */
export function loadExtProcService(): ServiceDefinition {
  const service = loadService('envoy/service/ext_proc/v3/external_processor.proto', 'envoy.service.ext_proc.v3.ExternalProcessor');
  const process = service['Process'] as MethodDefinition<PbProcessingRequest, PbProcessingResponse>;
  const serialize = process.responseSerialize;
  const deserialize = process.requestDeserialize;
  return {
    Process: {
      ...process,
      responseSerialize: (value: PbProcessingResponse) => {
        if (Buffer.isBuffer(value)) return value;
        try {
          return encodeProcessingResponse(value);
        } catch {
          // A field the fast encoder does not know: protobufjs knows every field of protos/.
          return serialize(value);
        }
      },
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decodeProcessingRequest(bytes);
        } catch {
          // protobufjs decides what the fast decoder refused (it knows every field).
          try {
            return deserialize(bytes);
          } catch {
            // Not null: a null chunk would end the readable side of the call (Node streams).
            return UNDECODABLE;
          }
        }
      },
    },
  };
}
