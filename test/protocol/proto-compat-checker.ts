// Generic wire-compatibility checker between two protobufjs Roots: our own protos (`protos/`)
// and Envoy's published ones (`../shared/envoy-api`). Used by proto-compat.test.ts.
//
// Every check returns a list of human-readable differences instead of throwing, so the
// test can both assert "no differences" on the real protos and assert "this difference is
// reported" on deliberately broken copies (the negative self-tests).
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import protobuf from 'protobufjs';
import type { Enum, Field, IConversionOptions, NamespaceBase, ReflectionObject, Root, Service, Type } from 'protobufjs';

/** How decoded messages are turned into plain objects for comparison. */
export const TO_OBJECT: IConversionOptions = { longs: String, enums: String, bytes: String, defaults: false };

/** Maximum message nesting filled by the sample generator (google.protobuf.Struct recurses). */
export const MAX_DEPTH = 6;
/** Upper bound on the number of samples per message type. */
export const MAX_VARIANTS = 64;

// ---------------------------------------------------------------------------------------------
// Loading and enumeration
// ---------------------------------------------------------------------------------------------

/** All `.proto` files under `dir`, as sorted paths relative to it (with `/` separators). */
export function listProtoFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() && entry.name.endsWith('.proto')) out.push(child);
    }
  };
  walk('');
  return out.sort();
}

/**
 * Parses `files` (relative to `baseDir`) and their imports with protobufjs, resolving imports
 * against `baseDir`. google/protobuf/* imports resolve to protobufjs's bundled well-known types.
 */
export function loadRoot(baseDir: string, files: readonly string[]): Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string =>
    path.isAbsolute(target) ? target : path.join(baseDir, target);
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  return root;
}

export interface Definitions {
  messages: Type[];
  enums: Enum[];
  services: Service[];
}

/** Every message, enum and service in `root` whose defining file lies under `dir`. */
export function definitionsUnder(root: Root, dir: string): Definitions {
  const prefix = path.resolve(dir) + path.sep;
  const isUnder = (obj: ReflectionObject): boolean =>
    obj.filename != null && path.resolve(obj.filename).startsWith(prefix);
  const defs: Definitions = { messages: [], enums: [], services: [] };
  const walk = (ns: NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) {
        if (isUnder(obj)) defs.messages.push(obj);
      } else if (obj instanceof protobuf.Enum) {
        if (isUnder(obj)) defs.enums.push(obj);
      } else if (obj instanceof protobuf.Service) {
        if (isUnder(obj)) defs.services.push(obj);
      }
      if (obj instanceof protobuf.Namespace) walk(obj); // packages, and Types (nested types)
    }
  };
  walk(root);
  const byName = <T extends ReflectionObject>(a: T, b: T): number => a.fullName.localeCompare(b.fullName);
  defs.messages.sort(byName);
  defs.enums.sort(byName);
  defs.services.sort(byName);
  return defs;
}

/** `fullName` without protobufjs's leading dot. */
export function nameOf(obj: ReflectionObject): string {
  return obj.fullName.replace(/^\./, '');
}

function lookup<T extends ReflectionObject>(
  root: Root,
  fullName: string,
  ctor: abstract new (...args: never[]) => T,
): T | undefined {
  const found = root.lookup(fullName.replace(/^\.?/, '.'));
  return found instanceof ctor ? found : undefined;
}

export function lookupMessage(root: Root, fullName: string): Type | undefined {
  return lookup(root, fullName, protobuf.Type);
}
export function lookupEnum(root: Root, fullName: string): Enum | undefined {
  return lookup(root, fullName, protobuf.Enum);
}
export function lookupService(root: Root, fullName: string): Service | undefined {
  return lookup(root, fullName, protobuf.Service);
}

// ---------------------------------------------------------------------------------------------
// Schema comparison
// ---------------------------------------------------------------------------------------------

export interface FieldShape {
  name: string;
  number: number;
  /** Scalar type name, or `message <full name>` / `enum <full name>`. */
  type: string;
  label: 'singular' | 'repeated' | 'map';
  /** Map key type (maps only). */
  keyType?: string;
  /** Name of the containing oneof, if any (proto3 `optional` shows as its synthetic oneof). */
  oneof?: string;
}

export function fieldShape(field: Field): FieldShape {
  const rt = field.resolvedType;
  const type =
    rt instanceof protobuf.Type ? `message ${nameOf(rt)}` : rt instanceof protobuf.Enum ? `enum ${nameOf(rt)}` : field.type;
  const shape: FieldShape = {
    name: field.name,
    number: field.id,
    type,
    label: field.map ? 'map' : field.repeated ? 'repeated' : 'singular',
  };
  if (field instanceof protobuf.MapField) shape.keyType = field.keyType;
  if (field.partOf) shape.oneof = field.partOf.name;
  return shape;
}

function describeShape(s: FieldShape): string {
  const label = s.label === 'map' ? `map<${s.keyType ?? '?'}, ${s.type}>` : s.label === 'repeated' ? `repeated ${s.type}` : s.type;
  return `${label} ${s.name} = ${s.number}${s.oneof ? ` (oneof ${s.oneof})` : ' (no oneof)'}`;
}

export interface SchemaReport {
  /** Differences that break compatibility (must be empty). */
  errors: string[];
  /** Envoy fields / enum values that ours leaves out (allowed: decoders skip unknown fields). */
  omitted: string[];
}

/** Every field of `ours` must exist in `envoy` with the same number, name, type, label and oneof. */
export function compareMessageSchema(ours: Type, envoy: Type): SchemaReport {
  const report: SchemaReport = { errors: [], omitted: [] };
  const msg = nameOf(ours);
  for (const field of ours.fieldsArray) {
    const o = fieldShape(field);
    const byNumber = envoy.fieldsById[field.id];
    if (!byNumber) {
      const byName = envoy.fields[field.name];
      report.errors.push(
        `${msg}.${field.name}: ours uses number ${field.id}, Envoy has no field ${field.id}` +
          (byName ? ` (Envoy's ${field.name} is number ${byName.id})` : ` (and no field named ${field.name})`),
      );
      continue;
    }
    const e = fieldShape(byNumber);
    const where = `${msg} field ${field.id}`;
    if (o.name !== e.name) report.errors.push(`${where}: name differs: ours "${o.name}", Envoy "${e.name}"`);
    if (o.type !== e.type) report.errors.push(`${where} (${o.name}): type differs: ours ${o.type}, Envoy ${e.type}`);
    if (o.label !== e.label) report.errors.push(`${where} (${o.name}): label differs: ours ${o.label}, Envoy ${e.label}`);
    if (o.keyType !== e.keyType)
      report.errors.push(`${where} (${o.name}): map key type differs: ours ${o.keyType ?? '-'}, Envoy ${e.keyType ?? '-'}`);
    if (o.oneof !== e.oneof)
      report.errors.push(
        `${where} (${o.name}): oneof membership differs: ours ${o.oneof ?? '(none)'}, Envoy ${e.oneof ?? '(none)'}`,
      );
  }
  for (const field of envoy.fieldsArray) {
    if (!ours.fieldsById[field.id]) report.omitted.push(`${msg}: ${describeShape(fieldShape(field))}`);
  }
  return report;
}

/** Every value ours defines must exist in Envoy's enum with the same number. */
export function compareEnum(ours: Enum, envoy: Enum): SchemaReport {
  const report: SchemaReport = { errors: [], omitted: [] };
  const name = nameOf(ours);
  for (const [valueName, num] of Object.entries(ours.values)) {
    const theirs = Object.prototype.hasOwnProperty.call(envoy.values, valueName) ? envoy.values[valueName] : undefined;
    if (theirs === undefined) {
      const envoyName = envoy.valuesById[num];
      report.errors.push(
        `${name}.${valueName} = ${num}: Envoy has no value ${valueName}` +
          (envoyName !== undefined ? ` (Envoy's ${num} is ${envoyName})` : ''),
      );
    } else if (theirs !== num) {
      report.errors.push(`${name}.${valueName}: number differs: ours ${num}, Envoy ${theirs}`);
    }
  }
  for (const [valueName, num] of Object.entries(envoy.values)) {
    if (!Object.prototype.hasOwnProperty.call(ours.values, valueName)) report.omitted.push(`${name}.${valueName} = ${num}`);
  }
  return report;
}

/** Every method ours defines must exist in Envoy's service with the same types and streaming. */
export function compareService(ours: Service, envoy: Service): string[] {
  const errors: string[] = [];
  const svc = nameOf(ours);
  for (const method of ours.methodsArray) {
    const theirs = envoy.methods[method.name];
    if (!theirs) {
      errors.push(`${svc}/${method.name}: Envoy's service has no such method`);
      continue;
    }
    method.resolve();
    theirs.resolve();
    const pairs: [string, string | undefined, string | undefined][] = [
      ['request type', method.resolvedRequestType?.fullName, theirs.resolvedRequestType?.fullName],
      ['response type', method.resolvedResponseType?.fullName, theirs.resolvedResponseType?.fullName],
    ];
    for (const [what, o, e] of pairs) {
      if (o !== e) errors.push(`${svc}/${method.name}: ${what} differs: ours ${o ?? '?'}, Envoy ${e ?? '?'}`);
    }
    if (!!method.requestStream !== !!theirs.requestStream)
      errors.push(`${svc}/${method.name}: request streaming differs: ours ${!!method.requestStream}, Envoy ${!!theirs.requestStream}`);
    if (!!method.responseStream !== !!theirs.responseStream)
      errors.push(
        `${svc}/${method.name}: response streaming differs: ours ${!!method.responseStream}, Envoy ${!!theirs.responseStream}`,
      );
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Sample generation
// ---------------------------------------------------------------------------------------------

/** Message and enum types reachable from `type` through its fields (including itself). */
function reachable(type: Type): { types: Type[]; enums: Enum[] } {
  const types = new Set<Type>();
  const enums = new Set<Enum>();
  const visit = (t: Type): void => {
    if (types.has(t)) return;
    types.add(t);
    for (const f of t.fieldsArray) {
      const rt = f.resolvedType;
      if (rt instanceof protobuf.Type) visit(rt);
      else if (rt instanceof protobuf.Enum) enums.add(rt);
    }
  };
  visit(type);
  return { types: [...types], enums: [...enums] };
}

/**
 * How many samples exercise every oneof member (member `v % size` is set in sample `v`) and
 * every non-zero enum value (likewise) of every reachable type; at least 1, at most MAX_VARIANTS.
 */
export function variantCount(type: Type): number {
  const { types, enums } = reachable(type);
  let n = 1;
  for (const t of types) for (const o of t.oneofsArray) n = Math.max(n, o.fieldsArray.length);
  for (const e of enums) n = Math.max(n, nonZeroValues(e).length);
  return Math.min(n, MAX_VARIANTS);
}

function nonZeroValues(e: Enum): number[] {
  return [...new Set(Object.values(e.values))].filter((v) => v !== 0).sort((a, b) => a - b);
}

function scalarSample(type: string, seed: number): unknown {
  switch (type) {
    case 'double':
      return seed + 0.5;
    case 'float':
      return seed + 0.25; // exactly representable in float32
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return -(seed + 1);
    case 'uint32':
    case 'fixed32':
      return 4_000_000_000 - seed;
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return (-(2n ** 53n) - BigInt(seed) - 1n).toString(); // beyond Number precision
    case 'uint64':
    case 'fixed64':
      return (2n ** 63n + BigInt(seed)).toString();
    case 'bool':
      return true;
    case 'string':
      return `s${seed}-é✓`;
    case 'bytes':
      return Uint8Array.from([0, seed & 0xff, 0x80, 0xff]);
    default:
      throw new Error(`scalarSample: unsupported scalar type ${type}`);
  }
}

function mapKeys(keyType: string, seed: number): string[] {
  switch (keyType) {
    case 'string':
      return [`k${seed}a`, `k${seed}b`];
    case 'int32':
    case 'sint32':
    case 'sfixed32':
    case 'uint32':
    case 'fixed32':
      return [String(seed + 1), String(seed + 2)];
    case 'bool':
      return ['true'];
    default:
      // 64-bit keys are hashed by protobufjs; no message in scope uses them.
      throw new Error(`sample: unsupported map key type ${keyType}`);
  }
}

function valueSample(field: Field, variant: number, depth: number, k: number, forcePresence: boolean): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) {
    if (depth >= MAX_DEPTH) return forcePresence ? {} : undefined;
    return buildSample(rt, variant + k, depth + 1);
  }
  if (rt instanceof protobuf.Enum) {
    const values = nonZeroValues(rt);
    return values.length > 0 ? values[(variant + k) % values.length] : 0;
  }
  return scalarSample(field.type, variant * 31 + field.id * 7 + k);
}

/**
 * A plain object for `type.fromObject`: every scalar, bytes, enum, map and repeated field set to
 * a non-default value, and exactly one member of each oneof (member `variant % size`), recursing
 * into message fields down to MAX_DEPTH.
 */
export function buildSample(type: Type, variant: number, depth = 0): Record<string, unknown> {
  const chosen = new Set<Field>();
  for (const oneof of type.oneofsArray) {
    const member = oneof.fieldsArray[variant % oneof.fieldsArray.length];
    if (member) chosen.add(member);
  }
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (field.partOf && !chosen.has(field)) continue;
    let value: unknown;
    if (field instanceof protobuf.MapField) {
      const entries: [string, unknown][] = [];
      mapKeys(field.keyType, variant).forEach((key, k) => {
        const v = valueSample(field, variant, depth, k, false);
        if (v !== undefined) entries.push([key, v]);
      });
      value = entries.length > 0 ? Object.fromEntries(entries) : undefined;
    } else if (field.repeated) {
      const items = [0, 1].map((k) => valueSample(field, variant, depth, k, false)).filter((v) => v !== undefined);
      value = items.length > 0 ? items : undefined;
    } else {
      value = valueSample(field, variant, depth, 0, field.partOf != null);
    }
    if (value !== undefined) out[field.name] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

/** Up to `limit` paths where `a` and `b` differ, with both values. */
export function diffObjects(a: unknown, b: unknown, at = '', out: string[] = [], limit = 8): string[] {
  if (out.length >= limit || isDeepStrictEqual(a, b)) return out;
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const key of keys) diffObjects(a[key], b[key], at ? `${at}.${key}` : key, out, limit);
    return out;
  }
  const show = (x: unknown): string => (x === undefined ? '(absent)' : JSON.stringify(x));
  out.push(`${at || '(root)'}: expected ${show(a)}, got ${show(b)}`);
  return out;
}

/**
 * Oneofs with more than one member set in a decoded plain object (recursively). protobufjs keeps
 * every member it decodes, whereas Envoy's C++ decoder keeps only the last one, so such a message
 * would not survive the trip.
 */
export function oneofViolations(type: Type, obj: Record<string, unknown>, at = '', out: string[] = []): string[] {
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => obj[f.name] !== undefined).map((f) => f.name);
    if (set.length > 1) out.push(`${at || nameOf(type)}: oneof ${oneof.name} has ${set.length} members set (${set.join(', ')})`);
  }
  for (const field of type.fieldsArray) {
    const rt = field.resolvedType;
    const value = obj[field.name];
    if (!(rt instanceof protobuf.Type) || typeof value !== 'object' || value === null) continue;
    const here = at ? `${at}.${field.name}` : field.name;
    const items = field.map ? Object.values(value) : Array.isArray(value) ? value : [value];
    items.forEach((item: unknown) => {
      if (typeof item === 'object' && item !== null) oneofViolations(rt, item as Record<string, unknown>, here, out);
    });
  }
  return out;
}

/** Keeps the first few failing samples in full and counts the rest. */
const MAX_REPORTED_SAMPLES = 3;
function pushCapped(report: RoundTripReport, failed: { count: number }, message: string): void {
  failed.count++;
  if (failed.count <= MAX_REPORTED_SAMPLES) report.errors.push(message);
}
function finishCapped(report: RoundTripReport, failed: { count: number }, what: string): void {
  if (failed.count > MAX_REPORTED_SAMPLES)
    report.errors.push(`${what}: ${failed.count - MAX_REPORTED_SAMPLES} more of ${report.samples} samples failed`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export interface RoundTripReport {
  samples: number;
  errors: string[];
  /** Envoy fields / enum values ours does not know, seen (and dropped) while decoding. */
  dropped: string[];
}

/**
 * Samples built from ours, encoded with ours, decoded with Envoy's: Envoy must see exactly what
 * ours sent (same plain object), and re-encoding with Envoy's must give the same bytes.
 */
export function roundTripOursToEnvoy(ours: Type, envoy: Type): RoundTripReport {
  const report: RoundTripReport = { samples: variantCount(ours), errors: [], dropped: [] };
  const failed = { count: 0 };
  for (let v = 0; v < report.samples; v++) {
    const tag = `${nameOf(ours)} ours→Envoy sample ${v}`;
    try {
      const bytes = ours.encode(ours.fromObject(buildSample(ours, v))).finish();
      const expected = ours.toObject(ours.decode(bytes), TO_OBJECT);
      let decoded;
      try {
        decoded = envoy.decode(bytes);
      } catch (err) {
        pushCapped(report, failed, `${tag}: Envoy's decoder failed: ${errorMessage(err)}`);
        continue;
      }
      const actual = envoy.toObject(decoded, TO_OBJECT);
      const problems = [...diffObjects(expected, actual), ...oneofViolations(envoy, actual)];
      if (problems.length > 0) {
        pushCapped(report, failed, `${tag}: Envoy decodes something else:\n    ${problems.join('\n    ')}`);
        continue;
      }
      const reencoded = envoy.encode(decoded).finish();
      if (!bytesEqual(bytes, reencoded)) pushCapped(report, failed, `${tag}: Envoy's re-encoding differs from our bytes`);
    } catch (err) {
      pushCapped(report, failed, `${tag}: ${errorMessage(err)}`);
    }
  }
  finishCapped(report, failed, `${nameOf(ours)} ours→Envoy`);
  return report;
}

/**
 * What ours should see when decoding Envoy's `obj`: fields ours does not define (by name and
 * number) are removed, enum values ours does not define stay numeric; `dropped` collects them.
 */
export function projectEnvoyToOurs(
  obj: Record<string, unknown>,
  envoy: Type,
  ours: Type,
  at: string,
  dropped: Set<string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const ef = envoy.fields[key];
    const of = ours.fields[key];
    const here = at ? `${at}.${key}` : key;
    if (!ef) {
      out[key] = value; // not a field name (cannot happen with toObject); keep to surface it
      continue;
    }
    if (!of && !ours.fieldsById[ef.id]) {
      // Ours has neither the name nor the number: an omitted field, skipped by our decoder.
      dropped.add(`field ${nameOf(envoy)}: ${describeShape(fieldShape(ef))}`);
      continue;
    }
    if (!of || of.id !== ef.id) {
      // Same name at another number, or another name at this number: keep it in the
      // expectation so the comparison reports the mismatch.
      out[key] = value;
      continue;
    }
    const convert = (x: unknown): unknown => {
      const ert = ef.resolvedType;
      const ort = of.resolvedType;
      if (ert instanceof protobuf.Type && ort instanceof protobuf.Type && typeof x === 'object' && x !== null) {
        return projectEnvoyToOurs(x as Record<string, unknown>, ert, ort, here, dropped);
      }
      if (ert instanceof protobuf.Enum && ort instanceof protobuf.Enum && typeof x === 'string') {
        const num = ert.values[x];
        if (num === undefined) return x;
        const ourName = ort.valuesById[num];
        if (ourName === undefined) {
          dropped.add(`enum value ${nameOf(ert)}.${x} (${num}) unknown to ours: decoded as the number`);
          return num;
        }
        return ourName;
      }
      return x;
    };
    if (ef.map && typeof value === 'object' && value !== null) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, x]) => [k, convert(x)]));
    } else if (Array.isArray(value)) {
      out[key] = value.map(convert);
    } else {
      out[key] = convert(value);
    }
  }
  return out;
}

/**
 * Samples built from Envoy's type, encoded with Envoy's, decoded with ours: ours must see what
 * Envoy sent, minus the fields (and enum value names) ours leaves out, which are reported.
 */
export function roundTripEnvoyToOurs(envoy: Type, ours: Type): RoundTripReport {
  const report: RoundTripReport = { samples: variantCount(envoy), errors: [], dropped: [] };
  const failed = { count: 0 };
  const dropped = new Set<string>();
  for (let v = 0; v < report.samples; v++) {
    const tag = `${nameOf(envoy)} Envoy→ours sample ${v}`;
    try {
      const bytes = envoy.encode(envoy.fromObject(buildSample(envoy, v))).finish();
      const sent = envoy.toObject(envoy.decode(bytes), TO_OBJECT);
      const expected = projectEnvoyToOurs(sent, envoy, ours, '', dropped);
      let decoded;
      try {
        decoded = ours.decode(bytes);
      } catch (err) {
        pushCapped(report, failed, `${tag}: our decoder failed: ${errorMessage(err)}`);
        continue;
      }
      const actual = ours.toObject(decoded, TO_OBJECT);
      const problems = [...diffObjects(expected, actual), ...oneofViolations(ours, actual)];
      if (problems.length > 0) pushCapped(report, failed, `${tag}: ours decodes something else:\n    ${problems.join('\n    ')}`);
    } catch (err) {
      pushCapped(report, failed, `${tag}: ${errorMessage(err)}`);
    }
  }
  finishCapped(report, failed, `${nameOf(envoy)} Envoy→ours`);
  report.dropped = [...dropped].sort();
  return report;
}

// ---------------------------------------------------------------------------------------------
// Everything at once (used by the negative self-tests)
// ---------------------------------------------------------------------------------------------

export interface CompatSummary {
  errors: string[];
  /** Our messages/enums/services that are not Envoy's (not in an `envoy.` package): not compared. */
  notCompared: string[];
  compared: { messages: string[]; enums: string[]; services: string[] };
}

/** Our definitions in an `envoy.` package must exist in Envoy's; others are not compared. */
export function isEnvoyName(fullName: string): boolean {
  return /^\.?envoy\./.test(fullName);
}

/** Runs every check on every definition in `ours` that lies under `oursDir`. */
export function checkAll(ours: Root, oursDir: string, envoy: Root): CompatSummary {
  const defs = definitionsUnder(ours, oursDir);
  const summary: CompatSummary = { errors: [], notCompared: [], compared: { messages: [], enums: [], services: [] } };
  const pair = <T extends ReflectionObject>(obj: T, find: (root: Root, name: string) => T | undefined): T | undefined => {
    const theirs = find(envoy, obj.fullName);
    if (!theirs) {
      if (isEnvoyName(obj.fullName)) summary.errors.push(`${nameOf(obj)}: not defined in Envoy's protos`);
      else summary.notCompared.push(nameOf(obj));
    }
    return theirs;
  };
  for (const msg of defs.messages) {
    const theirs = pair(msg, lookupMessage);
    if (!theirs) continue;
    summary.compared.messages.push(nameOf(msg));
    summary.errors.push(...compareMessageSchema(msg, theirs).errors);
    summary.errors.push(...roundTripOursToEnvoy(msg, theirs).errors);
    summary.errors.push(...roundTripEnvoyToOurs(theirs, msg).errors);
  }
  for (const e of defs.enums) {
    const theirs = pair(e, lookupEnum);
    if (!theirs) continue;
    summary.compared.enums.push(nameOf(e));
    summary.errors.push(...compareEnum(e, theirs).errors);
  }
  for (const svc of defs.services) {
    const theirs = pair(svc, lookupService);
    if (!theirs) continue;
    summary.compared.services.push(nameOf(svc));
    summary.errors.push(...compareService(svc, theirs));
  }
  return summary;
}
