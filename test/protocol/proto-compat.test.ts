// Proves, message by message, that our own ext_proc protos (protos/) are wire-compatible with
// Envoy's published API (../shared/envoy-api, also compiled to ../shared/envoy-api.pb):
//   - schema: every field of every message we define exists in Envoy's with the same number,
//     name, type (resolved full name for messages/enums), label (singular/repeated/map) and
//     oneof; every enum value we define has the same number; the ExternalProcessor service
//     matches (types, bidi streaming, gRPC path);
//   - wire: generically built, fully populated samples (every oneof member and every enum value
//     across samples) round-trip ours → Envoy's (identical objects and bytes) and Envoy's → ours
//     (identical except for the fields ours leaves out, which are named in the test titles/output);
//   - self-test: deliberately broken copies of protos/ (in a temp dir) and an in-memory mutation
//     must be reported, so the checks above can fail.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { Root, Type } from 'protobufjs';
import 'protobufjs/ext/descriptor/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSample,
  checkAll,
  compareEnum,
  compareMessageSchema,
  compareService,
  definitionsUnder,
  fieldShape,
  isEnvoyName,
  listProtoFiles,
  loadRoot,
  lookupEnum,
  lookupMessage,
  lookupService,
  nameOf,
  roundTripEnvoyToOurs,
  roundTripOursToEnvoy,
  variantCount,
} from './proto-compat-checker.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const protosDir = path.join(repoRoot, 'protos');
const envoyApiDir = path.resolve(repoRoot, '../shared/envoy-api');
const envoyPbFile = path.resolve(repoRoot, '../shared/envoy-api.pb');
const haveEnvoyApi = fs.existsSync(envoyApiDir);

const SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
const SKIP_NOTE = `SKIPPED: needs the shared reference protos (Envoy's data-plane-api) at ${envoyApiDir}`;

if (!haveEnvoyApi) console.warn(`proto-compat: ${SKIP_NOTE}`);

const ourFiles = listProtoFiles(protosDir);
const ours = loadRoot(protosDir, ourFiles);
const ourDefs = definitionsUnder(ours, protosDir);

/** Same relative paths in Envoy's tree (their imports are loaded too). */
const envoyFiles = haveEnvoyApi ? ourFiles.filter((f) => fs.existsSync(path.join(envoyApiDir, f))) : [];
const envoy: Root = haveEnvoyApi ? loadRoot(envoyApiDir, envoyFiles) : new protobuf.Root();

const messagesInBoth = ourDefs.messages.filter((t) => lookupMessage(envoy, t.fullName)).map(nameOf);
const enumsInBoth = ourDefs.enums.filter((e) => lookupEnum(envoy, e.fullName)).map(nameOf);

function pairOf(name: string): { o: Type; e: Type } {
  const o = lookupMessage(ours, name);
  const e = lookupMessage(envoy, name);
  if (!o || !e) throw new Error(`${name} missing from ${o ? "Envoy's" : 'our'} root`);
  return { o, e };
}

/** Short form of what Envoy has and ours leaves out, for test titles. */
function omittedTitle(name: string): string {
  if (!haveEnvoyApi) return '';
  const { o, e } = pairOf(name);
  const omitted = e.fieldsArray.filter((f) => !o.fieldsById[f.id]).map((f) => `${f.name} (${f.id})`);
  return omitted.length > 0 ? ` — ours omits ${omitted.join(', ')}` : '';
}

const droppedLog: string[] = [];

describe.skipIf(!haveEnvoyApi)(
  `protos/ wire compatibility with Envoy's ext_proc v3 API${haveEnvoyApi ? '' : ` — ${SKIP_NOTE}`}`,
  () => {
    afterAll(() => {
      if (droppedLog.length > 0) {
        console.log(
          `proto-compat: Envoy → ours round trips dropped only what ours leaves out:\n  ${[...new Set(droppedLog)].join('\n  ')}`,
        );
      }
    });

    it('loads our protos and the matching Envoy protos (ext_proc messages present)', () => {
      expect(ourFiles).toContain('envoy/service/ext_proc/v3/external_processor.proto');
      expect(ourDefs.messages.length).toBeGreaterThan(10);
      expect(messagesInBoth).toContain('envoy.service.ext_proc.v3.ProcessingRequest');
      expect(messagesInBoth).toContain('envoy.service.ext_proc.v3.ProcessingResponse');
      console.log(
        `proto-compat: comparing ${messagesInBoth.length} messages, ${enumsInBoth.length} enums from ${ourFiles.length} files ` +
          `against ${envoyApiDir}:\n  ${messagesInBoth.join('\n  ')}\n  ${enumsInBoth.map((e) => `enum ${e}`).join('\n  ')}`,
      );
    });

    it('every protos/envoy/** file exists at the same path in Envoy’s API', () => {
      const missing = ourFiles.filter((f) => f.startsWith('envoy/') && !envoyFiles.includes(f));
      expect(missing).toEqual([]);
    });

    it('every message, enum and service we define in an envoy.* package exists in Envoy’s protos', () => {
      const all = [...ourDefs.messages, ...ourDefs.enums, ...ourDefs.services];
      const missing = all.filter((d) => isEnvoyName(d.fullName) && !envoy.lookup(d.fullName)).map(nameOf);
      expect(missing).toEqual([]);
      const notEnvoy = all.filter((d) => !isEnvoyName(d.fullName)).map(nameOf);
      if (notEnvoy.length > 0) console.log(`proto-compat: not Envoy types, not compared: ${notEnvoy.join(', ')}`);
    });

    describe.each(messagesInBoth)('message %s', (name) => {
      it(`fields match Envoy’s: number, name, type, label, oneof${omittedTitle(name)}`, () => {
        const { o, e } = pairOf(name);
        const report = compareMessageSchema(o, e);
        expect(report.errors).toEqual([]);
        // Also assert the field-by-field shapes directly, for a readable diff on failure.
        for (const f of o.fieldsArray) {
          const theirs = e.fieldsById[f.id];
          expect(theirs && fieldShape(theirs), `${name}.${f.name}`).toEqual(fieldShape(f));
        }
      });

      it('samples exercise every oneof member and every field', () => {
        const { o } = pairOf(name);
        const n = variantCount(o);
        const seen = new Set<string>();
        for (let v = 0; v < n; v++) for (const key of Object.keys(buildSample(o, v))) seen.add(key);
        expect([...seen].sort()).toEqual(o.fieldsArray.map((f) => f.name).sort());
      });

      it(`round trip: encode with ours → decode with Envoy’s (${haveEnvoyApi ? variantCount(pairOf(name).o) : 0} samples)`, () => {
        const { o, e } = pairOf(name);
        const report = roundTripOursToEnvoy(o, e);
        expect(report.samples).toBeGreaterThan(0);
        expect(report.errors).toEqual([]);
      });

      it(`round trip: encode with Envoy’s → decode with ours (${haveEnvoyApi ? variantCount(pairOf(name).e) : 0} samples)`, () => {
        const { o, e } = pairOf(name);
        const report = roundTripEnvoyToOurs(e, o);
        expect(report.errors).toEqual([]);
        if (report.dropped.length > 0) {
          droppedLog.push(...report.dropped);
          console.log(`proto-compat: ${name}: Envoy → ours dropped (allowed, ours omits them):\n  ${report.dropped.join('\n  ')}`);
        }
      });
    });

    describe.each(enumsInBoth)('enum %s', (name) => {
      it('every value we define has the same number in Envoy’s', () => {
        const o = lookupEnum(ours, name);
        const e = lookupEnum(envoy, name);
        expect(o && e).toBeTruthy();
        if (!o || !e) return;
        const report = compareEnum(o, e);
        expect(report.errors).toEqual([]);
        if (report.omitted.length > 0) console.log(`proto-compat: ${name}: Envoy values ours omits: ${report.omitted.join(', ')}`);
      });
    });

    it(`service ${SERVICE}: Process(stream ProcessingRequest) returns (stream ProcessingResponse) in both`, () => {
      const o = lookupService(ours, SERVICE);
      const e = lookupService(envoy, SERVICE);
      expect(o, 'our service').toBeDefined();
      expect(e, "Envoy's service").toBeDefined();
      if (!o || !e) return;
      expect(compareService(o, e)).toEqual([]);
      for (const svc of [o, e]) {
        const process = svc.methods['Process'];
        expect(process, `${svc.filename ?? ''} Process`).toBeDefined();
        if (!process) continue;
        process.resolve();
        expect(process.resolvedRequestType?.fullName).toBe('.envoy.service.ext_proc.v3.ProcessingRequest');
        expect(process.resolvedResponseType?.fullName).toBe('.envoy.service.ext_proc.v3.ProcessingResponse');
        expect(process.requestStream).toBe(true);
        expect(process.responseStream).toBe(true);
      }
    });

    it('every service we define that Envoy also defines matches it', () => {
      for (const svc of ourDefs.services) {
        const theirs = lookupService(envoy, svc.fullName);
        if (theirs) expect(compareService(svc, theirs)).toEqual([]);
      }
    });

    it('@grpc/proto-loader (what the gRPC server uses) sees the same Process method in both trees', () => {
      const opts = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };
      const method = (dir: string) => {
        const pkg = protoLoader.loadSync('envoy/service/ext_proc/v3/external_processor.proto', { ...opts, includeDirs: [dir] });
        const svc = pkg[SERVICE];
        if (!svc || 'format' in svc) throw new Error(`${SERVICE} is not a service in ${dir}`);
        const m = (svc as protoLoader.ServiceDefinition)['Process'];
        if (!m) throw new Error(`no Process in ${dir}`);
        const typeName = (t: protoLoader.MessageTypeDefinition<object, object>): unknown =>
          (t.type as { name?: unknown }).name;
        return {
          path: m.path,
          requestStream: m.requestStream,
          responseStream: m.responseStream,
          request: typeName(m.requestType),
          response: typeName(m.responseType),
        };
      };
      const expected = {
        path: '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
        requestStream: true,
        responseStream: true,
        request: 'ProcessingRequest',
        response: 'ProcessingResponse',
      };
      expect(method(protosDir)).toEqual(expected);
      expect(method(envoyApiDir)).toEqual(expected);
    });

    it.skipIf(!fs.existsSync(envoyPbFile))(
      'Envoy’s .proto files as parsed here agree with the compiled descriptor set ../shared/envoy-api.pb',
      () => {
        // protobufjs/ext/descriptor (imported above) adds Root.fromDescriptor at runtime.
        const RootCtor = protobuf.Root as unknown as { fromDescriptor?: (set: Uint8Array) => Root };
        if (typeof RootCtor.fromDescriptor !== 'function')
          throw new Error('protobufjs/ext/descriptor did not install Root.fromDescriptor');
        const pb = RootCtor.fromDescriptor(fs.readFileSync(envoyPbFile));
        pb.resolveAll();
        const errors: string[] = [];
        for (const name of messagesInBoth) {
          const parsed = pairOf(name).e;
          const compiled = lookupMessage(pb, name);
          if (!compiled) {
            errors.push(`${name}: not in envoy-api.pb`);
            continue;
          }
          const ids = (t: Type) => t.fieldsArray.map((f) => f.id).sort((a, b) => a - b);
          if (ids(parsed).join() !== ids(compiled).join()) errors.push(`${name}: field numbers ${ids(parsed)} vs ${ids(compiled)}`);
          for (const f of parsed.fieldsArray) {
            const c = compiled.fieldsById[f.id];
            if (!c) continue;
            const want = fieldShape(f);
            if (f.map) {
              // The descriptor form of a map is a repeated XxxEntry message {key = 1; value = 2}.
              const entry = c.resolvedType;
              const key = entry instanceof protobuf.Type ? entry.fieldsById[1] : undefined;
              const value = entry instanceof protobuf.Type ? entry.fieldsById[2] : undefined;
              const got = {
                name: c.name,
                repeated: c.repeated,
                keyType: key?.type,
                valueType: value && fieldShape(value).type,
              };
              const exp = { name: want.name, repeated: true, keyType: want.keyType, valueType: want.type };
              if (JSON.stringify(got) !== JSON.stringify(exp))
                errors.push(`${name}.${f.name}: ${JSON.stringify(got)} vs ${JSON.stringify(exp)}`);
            } else if (JSON.stringify(fieldShape(c)) !== JSON.stringify(want)) {
              errors.push(`${name}.${f.name}: ${JSON.stringify(fieldShape(c))} vs ${JSON.stringify(want)}`);
            }
          }
        }
        for (const name of enumsInBoth) {
          const parsed = lookupEnum(envoy, name);
          const compiled = lookupEnum(pb, name);
          if (!parsed || !compiled) errors.push(`${name}: missing`);
          else if (JSON.stringify(Object.entries(parsed.values)) !== JSON.stringify(Object.entries(compiled.values)))
            errors.push(`${name}: values differ`);
        }
        expect(errors).toEqual([]);
      },
    );

    // -----------------------------------------------------------------------------------------
    // Negative self-tests: the checker must report breakage.
    // -----------------------------------------------------------------------------------------
    describe('self-test: the checker reports deliberately broken copies of protos/', () => {
      let tmpBase = '';
      beforeAll(() => {
        tmpBase = fs.mkdtempSync(path.join(os.tmpdir(), 'proto-compat-'));
      });
      afterAll(() => {
        if (tmpBase) fs.rmSync(tmpBase, { recursive: true, force: true });
      });

      /** Copies protos/ to a fresh temp dir, applies one textual edit, runs every check. */
      function checkMutatedCopy(file: string, from: string, to: string) {
        const dir = fs.mkdtempSync(path.join(tmpBase, 'protos-'));
        fs.cpSync(protosDir, dir, { recursive: true });
        const target = path.join(dir, file);
        const text = fs.readFileSync(target, 'utf8');
        const occurrences = text.split(from).length - 1;
        if (occurrences !== 1) throw new Error(`self-test edit "${from}" matches ${occurrences} times in ${file}; update the test`);
        fs.writeFileSync(target, text.replace(from, to));
        return checkAll(loadRoot(dir, listProtoFiles(dir)), dir, envoy);
      }

      it('an unmodified copy passes every check (control)', () => {
        const dir = fs.mkdtempSync(path.join(tmpBase, 'protos-'));
        fs.cpSync(protosDir, dir, { recursive: true });
        const summary = checkAll(loadRoot(dir, listProtoFiles(dir)), dir, envoy);
        expect(summary.errors).toEqual([]);
        expect(summary.compared.messages).toEqual(messagesInBoth);
        expect(summary.compared.enums).toEqual(enumsInBoth);
        expect(summary.compared.services).toContain(SERVICE);
      });

      const EXT_PROC = 'envoy/service/ext_proc/v3/external_processor.proto';
      const cases: { what: string; file: string; from: string; to: string; expect: RegExp[] }[] = [
        {
          what: 'changed field number',
          file: EXT_PROC,
          from: 'bool observability_mode = 10;',
          to: 'bool observability_mode = 13;',
          expect: [
            /ProcessingRequest\.observability_mode: ours uses number 13, Envoy has no field 13 \(Envoy's observability_mode is number 10\)/,
            /ProcessingRequest ours→Envoy sample \d+: Envoy decodes something else/,
            /ProcessingRequest Envoy→ours sample \d+: ours decodes something else/,
          ],
        },
        {
          what: 'changed nested field number (HeaderValue.key)',
          file: 'envoy/config/core/v3/base.proto',
          from: 'string key = 1;',
          to: 'string key = 4;',
          expect: [/HeaderValue\.key: ours uses number 4/, /ProcessingRequest ours→Envoy sample \d+: Envoy decodes something else/],
        },
        {
          what: 'changed scalar type',
          file: EXT_PROC,
          from: 'bool clear_route_cache = 5;',
          to: 'string clear_route_cache = 5;',
          expect: [/CommonResponse field 5 \(clear_route_cache\): type differs: ours string, Envoy bool/, /CommonResponse ours→Envoy sample \d+/],
        },
        {
          what: 'changed message type',
          file: EXT_PROC,
          from: 'HttpTrailers request_trailers = 6;',
          to: 'HttpBody request_trailers = 6;',
          expect: [
            /ProcessingRequest field 6 \(request_trailers\): type differs: ours message envoy\.service\.ext_proc\.v3\.HttpBody, Envoy message envoy\.service\.ext_proc\.v3\.HttpTrailers/,
          ],
        },
        {
          what: 'renamed field',
          file: EXT_PROC,
          from: 'bool clear_route_cache = 5;',
          to: 'bool clear_cache = 5;',
          expect: [/CommonResponse field 5: name differs: ours "clear_cache", Envoy "clear_route_cache"/],
        },
        {
          what: 'repeated → singular',
          file: EXT_PROC,
          from: 'repeated string remove_headers = 2;',
          to: 'string remove_headers = 2;',
          expect: [/HeaderMutation field 2 \(remove_headers\): label differs: ours singular, Envoy repeated/, /HeaderMutation ours→Envoy/],
        },
        {
          what: 'map → singular message',
          file: EXT_PROC,
          from: 'map<string, google.protobuf.Struct> attributes = 9;',
          to: 'google.protobuf.Struct attributes = 9;',
          expect: [/ProcessingRequest field 9 \(attributes\): label differs: ours singular, Envoy map/],
        },
        {
          what: 'field moved out of its oneof',
          file: EXT_PROC,
          from: '    StreamedImmediateResponse streamed_immediate_response = 11;\n  }',
          to: '  }\n  StreamedImmediateResponse streamed_immediate_response = 11;',
          expect: [/ProcessingResponse field 11 \(streamed_immediate_response\): oneof membership differs: ours \(none\), Envoy response/],
        },
        {
          what: 'changed enum value number',
          file: 'envoy/extensions/filters/http/ext_proc/v3/processing_mode.proto',
          from: 'BUFFERED_PARTIAL = 3;',
          to: 'BUFFERED_PARTIAL = 7;',
          expect: [/ProcessingMode\.BodySendMode\.BUFFERED_PARTIAL: number differs: ours 7, Envoy 3/, /ProcessingMode ours→Envoy sample \d+/],
        },
        {
          what: 'field Envoy does not have',
          file: EXT_PROC,
          from: 'message GrpcStatus {',
          to: 'message GrpcStatus {\n  string extra = 9;',
          expect: [/GrpcStatus\.extra: ours uses number 9, Envoy has no field 9/],
        },
        {
          what: 'message Envoy does not have',
          file: EXT_PROC,
          from: 'message GrpcStatus {',
          to: 'message NotInEnvoy {\n  string a = 1;\n}\n\nmessage GrpcStatus {',
          expect: [/envoy\.service\.ext_proc\.v3\.NotInEnvoy: not defined in Envoy's protos/],
        },
        {
          what: 'Process no longer streams responses',
          file: EXT_PROC,
          from: 'returns (stream ProcessingResponse)',
          to: 'returns (ProcessingResponse)',
          expect: [/ExternalProcessor\/Process: response streaming differs: ours false, Envoy true/],
        },
        {
          what: 'Process request type changed',
          file: EXT_PROC,
          from: 'rpc Process(stream ProcessingRequest)',
          to: 'rpc Process(stream HttpHeaders)',
          expect: [/ExternalProcessor\/Process: request type differs: ours \.envoy\.service\.ext_proc\.v3\.HttpHeaders/],
        },
      ];

      it.each(cases)('reports: $what', ({ file, from, to, expect: patterns }) => {
        const summary = checkMutatedCopy(file, from, to);
        expect(summary.errors.length).toBeGreaterThan(0);
        for (const pattern of patterns) {
          expect(
            summary.errors.some((err) => pattern.test(err)),
            `expected an error matching ${pattern}; got:\n${summary.errors.join('\n')}`,
          ).toBe(true);
        }
      });

      it('reports a field removed from its oneof in a loaded Root (in-memory mutation)', () => {
        const mutated = loadRoot(protosDir, ourFiles); // fresh Root, not the one the suite uses
        const type = lookupMessage(mutated, 'envoy.service.ext_proc.v3.ProcessingResponse');
        const field = type?.fields['immediate_response'];
        if (!type || !field?.partOf) throw new Error('ProcessingResponse.immediate_response is not in a oneof');
        field.partOf.remove(field);
        const theirs = pairOf('envoy.service.ext_proc.v3.ProcessingResponse').e;
        expect(compareMessageSchema(type, theirs).errors).toEqual([
          'envoy.service.ext_proc.v3.ProcessingResponse field 7 (immediate_response): oneof membership differs: ours (none), Envoy response',
        ]);
        // On the wire, ours now sends immediate_response next to another oneof member; Envoy keeps one.
        expect(roundTripOursToEnvoy(type, theirs).errors.length).toBeGreaterThan(0);
      });
    });
  },
);
