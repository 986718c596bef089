/**
 * @module identity/options
 * Options of caller identity (the `identity` stage's entry in `pipeline.stages`), validated with
 * zod like the rest of the config so a typo names its key.
 */
import { z } from 'zod';

/** Where a caller id can come from, tried in the configured order. */
export const identitySources = ['xfcc', 'header', 'api-key'] as const;
export type IdentitySource = (typeof identitySources)[number];

/** Characters a caller id taken from a header may use (also what `defaultCaller` may use). */
export const callerIdRe = /^[A-Za-z0-9._:@/*+=-]{1,256}$/;

export const identityOptionsSchema = z
  .object({
    /** Sources in the order they are tried; the first one present decides. */
    sources: z
      .array(z.enum(identitySources))
      .min(1)
      .default(['xfcc', 'header', 'api-key'])
      .refine((s) => new Set(s).size === s.length, 'a source is listed twice'),
    /** Header read by the `header` source (lower case). Only trust it behind a proxy that strips it from clients. */
    header: z
      .string()
      .regex(/^[a-z0-9-]+$/, 'a lower-case header name')
      .default('x-caller-id'),
    /** Longest caller id accepted from the header source. */
    headerMaxLength: z.number().int().min(1).max(256).default(128),
    /** SPIFFE trust domains accepted from XFCC; empty: any. */
    trustDomains: z.array(z.string().regex(/^[a-z0-9._-]+$/)).default([]),
    /**
     * Caller names for credential hashes: `key:<16 hex>` ids (as logged) → a readable caller name.
     * Compute one with `node -e "console.log(require('crypto').createHash('sha256').update(KEY).digest('hex').slice(0,16))"`.
     */
    apiKeys: z
      .record(z.string().regex(/^[0-9a-f]{16}$/, '16 lower-case hex digits (first 16 of SHA-256 of the key)'), z.string().regex(callerIdRe))
      .default({}),
    /** Caller used when no source is present (unless `refuse`). */
    defaultCaller: z.string().regex(callerIdRe).default('anonymous'),
    /** Refuse (401) a request that has no identity instead of using `defaultCaller`. */
    refuse: z.boolean().default(false),
    /**
     * A source that is present but malformed (XFCC that does not parse, a header with bad
     * characters): `refuse` (default; a broken credential never silently becomes another caller)
     * or `next` (try the next source).
     */
    onInvalid: z.enum(['refuse', 'next']).default('refuse'),
  })
  .strict();

export type IdentityOptions = z.output<typeof identityOptionsSchema>;
