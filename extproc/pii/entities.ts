/**
 * @module pii/entities
 * The entity types the PII module knows, the actions an operator can pick for each, and the
 * priority that decides which detection wins where two overlap.
 *
 * Type names are upper-case identifiers because they appear inside placeholders (`<EMAIL_1>`):
 * a shape models copy verbatim and that cannot be confused with ordinary prose.
 */

/** Built-in entity types, in the order reports list them. */
export const builtinEntityTypes = [
  'EMAIL',
  'PHONE',
  'CREDIT_CARD',
  'IBAN',
  'SSN',
  'IP_ADDRESS',
  'OPENAI_KEY',
  'ANTHROPIC_KEY',
  'AWS_KEY',
  'GITHUB_TOKEN',
  'SLACK_TOKEN',
  'STRIPE_KEY',
  'GOOGLE_API_KEY',
  'JWT',
  'PRIVATE_KEY',
  'URL_PASSWORD',
  'BEARER_TOKEN',
] as const;

export type BuiltinEntityType = (typeof builtinEntityTypes)[number];

/** A built-in type or an operator-named one (custom regex, deny list). */
export type EntityType = string;

/**
 * What happens to a detected value:
 * - `tokenize`: numbered placeholder (`<EMAIL_1>`), restored in the answer;
 * - `redact`: type placeholder (`<EMAIL>`), never restored;
 * - `block`: the request must be refused; only the type is reported;
 * - `allow`: left as is (the type is not even scanned for).
 */
export type PiiAction = 'tokenize' | 'redact' | 'block' | 'allow';

export const piiActions = ['tokenize', 'redact', 'block', 'allow'] as const;

/** Operator-defined type names: what a placeholder can carry. */
export const entityNamePattern = /^[A-Z][A-Z0-9_]{0,39}$/;

/**
 * Overlap priority (higher wins, then the longer match, then the earlier one). Credentials with
 * a distinctive prefix beat generic shapes: `Bearer sk-...` is an OpenAI key, a URL's
 * `user:pass@host` is a password and not an e-mail address.
 */
export const builtinPriority: Readonly<Record<BuiltinEntityType, number>> = {
  PRIVATE_KEY: 100,
  ANTHROPIC_KEY: 95,
  OPENAI_KEY: 90,
  AWS_KEY: 90,
  GITHUB_TOKEN: 90,
  SLACK_TOKEN: 90,
  STRIPE_KEY: 90,
  GOOGLE_API_KEY: 90,
  JWT: 85,
  BEARER_TOKEN: 80,
  URL_PASSWORD: 75,
  EMAIL: 60,
  IBAN: 55,
  CREDIT_CARD: 50,
  SSN: 45,
  IP_ADDRESS: 42,
  PHONE: 40,
};

/** Operator regexes and deny-list terms rank between credentials and structured types. */
export const customPriority = 70;
export const denyListPriority = 65;
/** Allow-listed values beat everything: nothing overlapping them is touched. */
export const allowPriority = 1000;

/** One detected entity: `text.slice(start, end)` is its value. */
export interface Detection {
  readonly start: number;
  readonly end: number;
  readonly type: EntityType;
  readonly priority: number;
}
