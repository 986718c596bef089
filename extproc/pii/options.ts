/**
 * @module pii/options
 * Options of the `pii` stage (the entry's keys besides `name` in `pipeline.stages`). With no
 * options every built-in entity type is tokenized and answers are restored.
 *
 * ```yaml
 * pipeline:
 *   stages:
 *     - parse-request
 *     - name: pii
 *       entities: { EMAIL: tokenize, CREDIT_CARD: block, IP_ADDRESS: allow }
 *       custom:   [{ name: EMPLOYEE_ID, pattern: 'EMP-\d{6}', action: redact }]
 *       denyList: { name: CUSTOMER, terms: [Acme Corp, Globex], action: tokenize }
 *       allowList: [support@example.com]
 *       scanResponses: true
 *       rules:
 *         - match: { route: internal-chat }
 *           entities: { EMAIL: allow }
 * ```
 *
 * Every problem is reported with its key (`custom[0].pattern: invalid regular expression …`).
 */
import { z } from 'zod';
import { builtinEntityTypes, entityNamePattern, piiActions } from './entities.js';
import { maxTermLength } from './termMatcher.js';

const action = z.enum(piiActions);
const entityName = z
  .string()
  .regex(entityNamePattern, 'must be an upper-case name (A-Z, 0-9, _), starting with a letter, at most 40 characters');
const entityActions = z.record(z.string(), action);

const customSchema = z
  .object({
    /** Type name, shown in placeholders (`<EMPLOYEE_ID_1>`) and counts. */
    name: entityName,
    /** JavaScript regular expression source; every match is an entity. */
    pattern: z.string().min(1),
    /** Extra flags among `i`, `m`, `s`, `u` (`g` is always added). */
    flags: z.string().regex(/^[imsu]*$/, 'only i, m, s, u').default(''),
    action: action.default('tokenize'),
  })
  .strict();

const denyListSchema = z
  .object({
    /** Type name for these terms. */
    name: entityName.default('TERM'),
    /** Exact terms, matched case-insensitively as whole words. */
    terms: z.array(z.string().trim().min(1).max(maxTermLength)),
    action: action.default('tokenize'),
  })
  .strict();

const matchValue = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

const ruleSchema = z
  .object({
    /** Route name and/or caller identity; a rule applies when every given key matches. */
    match: z
      .object({ route: matchValue.optional(), caller: matchValue.optional() })
      .strict()
      .refine((m) => m.route !== undefined || m.caller !== undefined, 'give route and/or caller'),
    /** Actions overriding the stage-wide ones for matching requests (later rules win). */
    entities: entityActions,
  })
  .strict();

export const piiOptionsSchema = z
  .object({
    /** Action per entity type (built-in, custom or deny-list name); unlisted types: `tokenize`. */
    entities: entityActions.default({}),
    custom: z.array(customSchema).default([]),
    denyList: z
      .union([denyListSchema, z.array(denyListSchema)])
      .optional()
      .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])),
    /** Values never touched (case-insensitive exact match), e.g. documentation examples. */
    allowList: z.array(z.string().min(1)).default([]),
    /** Put original values back into answers (JSON and SSE). */
    restore: z.boolean().default(true),
    /** Also scan answers for entities the model produced itself (counted, reported). */
    scanResponses: z.boolean().default(false),
    /**
     * Detection failure: `closed` refuses the request, `open` sends it unredacted (explicit
     * choice). In `pipeline.stages` this is the entry's common `failure` key, which the pipeline
     * applies to every stage (with `timeoutMs`); the stage declares this value as its default.
     */
    failure: z.enum(['closed', 'open']).default('closed'),
    rules: z.array(ruleSchema).default([]),
  })
  .strict()
  .superRefine((o, ctx) => {
    // Zod still runs this when a nested key failed; read defensively.
    const list = <T>(v: T[] | undefined): T[] => (Array.isArray(v) ? v : []);
    const known = new Set<string>(builtinEntityTypes);
    list(o.custom).forEach((c, i) => {
      if (known.has(c.name)) {
        ctx.addIssue({ code: 'custom', path: ['custom', i, 'name'], message: `"${c.name}" is already an entity type` });
      }
      known.add(c.name);
      let re: RegExp;
      try {
        re = new RegExp(c.pattern, `${c.flags}g`);
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          path: ['custom', i, 'pattern'],
          message: `invalid regular expression: ${err instanceof Error ? err.message : String(err)}`,
        });
        return;
      }
      if (re.test('')) {
        ctx.addIssue({ code: 'custom', path: ['custom', i, 'pattern'], message: 'matches the empty string' });
      }
    });
    list(o.denyList).forEach((d, i) => {
      if (known.has(d.name)) {
        ctx.addIssue({ code: 'custom', path: ['denyList', i, 'name'], message: `"${d.name}" is already an entity type` });
      }
      known.add(d.name);
    });
    const checkNames = (entities: Record<string, unknown>, path: (string | number)[]): void => {
      for (const key of Object.keys(entities)) {
        if (!known.has(key)) {
          ctx.addIssue({ code: 'custom', path: [...path, key], message: `unknown entity type "${key}"` });
        }
      }
    };
    if (o.entities !== null && typeof o.entities === 'object') checkNames(o.entities, ['entities']);
    list(o.rules).forEach((r, i) => {
      if (r?.entities !== null && typeof r?.entities === 'object') checkNames(r.entities, ['rules', i, 'entities']);
    });
  });

/** Options as written (input of the schema). */
export type PiiOptionsInput = z.input<typeof piiOptionsSchema>;
/** Options after validation and defaults. */
export type PiiOptions = z.output<typeof piiOptionsSchema>;
