/**
 * @module config/load
 * Turns YAML text or a plain object into a validated {@link GatewayConfig}, or a
 * {@link ConfigError} whose lines each name the bad key and why:
 * `routes[2].fallback[1]: unknown model "gpt-5o"`.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type GatewayConfig } from './schema.js';
import { substituteEnv } from './env.js';
import { formatPath } from './path.js';

/** A config that cannot be served, with one line per problem. */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    source = 'config',
  ) {
    super(`invalid ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Checks that a config's cross-references resolve beyond the schema (e.g. stage names). */
export type ConfigCheck = (config: GatewayConfig) => string[];

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`).join('\n  ');
  }
  return `${formatPath(issue.path)}: ${issue.message}`;
}

/**
 * Validates a plain object (already env-substituted) as the gateway config.
 * `checks` add problems the schema cannot know about (e.g. stages not registered).
 */
export function parseConfig(raw: unknown, checks: ConfigCheck[] = [], source = 'config'): GatewayConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(result.error.issues.map(describeIssue), source);
  const problems = checks.flatMap((check) => check(result.data));
  if (problems.length > 0) throw new ConfigError(problems, source);
  return result.data;
}

/** Parses YAML text, substitutes `${ENV}` references, and validates. */
export function parseConfigText(
  text: string,
  env: NodeJS.ProcessEnv = process.env,
  checks: ConfigCheck[] = [],
  source = 'config',
): GatewayConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => `YAML ${e.linePos ? `line ${e.linePos[0].line}` : ''}: ${e.message.split('\n')[0]}`),
      source,
    );
  }
  const { value, problems } = substituteEnv(doc.toJS(), env);
  if (problems.length > 0) throw new ConfigError(problems, source);
  return parseConfig(value, checks, source);
}

/** Reads and validates a config file. */
export async function loadConfigFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  checks: ConfigCheck[] = [],
): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`], path);
  }
  return parseConfigText(text, env, checks, path);
}
