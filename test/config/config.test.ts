/** Config validation: every problem names its key and why; secrets come from ${ENV}. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig, parseConfigText } from '../../extproc/config/load.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';

const checks = [stageCheck(builtinStages)];

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const base = `
providers:
  openai: { api: openai, cluster: openai }
models:
  gpt-4o: { provider: openai }
  gpt-4o-mini: { provider: openai }
`;

describe('config validation', () => {
  it('gives embedded defaults for an empty config: pass-through on :50051', () => {
    const c = parseConfig({}, checks);
    expect(c.server.port).toBe(50051);
    expect(c.server.maxMessageBytes).toBeGreaterThan(4 * 1024 * 1024);
    expect(c.pipeline.stages).toEqual([]);
  });

  it('names an unknown model in a fallback chain by its path', () => {
    const yaml = `${base}
routes:
  - { model: gpt-4o }
  - { model: gpt-4o-mini }
  - { model: gpt-4o, fallback: [gpt-4o-mini, gpt-5o] }
`;
    expect(problemsOf(() => parseConfigText(yaml, {}, checks))).toEqual(['routes[2].fallback[1]: unknown model "gpt-5o"']);
  });

  it('lists every schema problem at once, then cross-references: unknown keys, wrong types, bad enums, unknown provider and stage', () => {
    const yaml = `
server: { port: "fifty", prot: 1 }
logging: { level: loud }
providers:
  openai: { api: openai, cluster: openai }
models:
  m1: { provider: nowhere }
pipeline:
  stages: [parse-request, pii-magic]
`;
    const problems = problemsOf(() => parseConfigText(yaml, {}, checks));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.port: .*number/),
        'server.prot: unknown key',
        expect.stringMatching(/^logging\.level: /),
      ]),
    );
    // Cross-references are resolved once every key is well-formed.
    expect(problemsOf(() => parseConfigText(`providers: {}\nmodels: { m1: { provider: nowhere } }`, {}, checks))).toEqual([
      'models.m1.provider: unknown provider "nowhere"',
    ]);
    // Stage names are checked once the schema passes.
    const stageProblems = problemsOf(() => parseConfigText(`pipeline: { stages: [parse-request, pii-magic] }`, {}, checks));
    expect(stageProblems).toHaveLength(1);
    expect(stageProblems[0]).toMatch(/^pipeline\.stages\[1\]: unknown stage "pii-magic" \(known: parse-request, identity(, [a-z-]+)*\)$/);
  });

  it('refuses options on a stage that takes none, and a stage listed twice', () => {
    expect(problemsOf(() => parseConfig({ pipeline: { stages: [{ name: 'parse-request', strict: true }] } }, checks))).toEqual([
      'pipeline.stages[0].strict: stage "parse-request" takes no options',
    ]);
    expect(problemsOf(() => parseConfig({ pipeline: { stages: ['parse-request', 'parse-request'] } }, checks))).toEqual([
      'pipeline.stages[1]: stage "parse-request" is listed twice',
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const problems = problemsOf(() => parseConfigText('server:\n  port: 1\n   host: x\n', {}, checks));
    expect(problems[0]).toMatch(/^YAML line \d+: /);
  });

  it('substitutes ${ENV} in values, with defaults, and names a missing variable by key', () => {
    const yaml = `
providers:
  openai: { api: openai, cluster: "\${CLUSTER:-openai}", apiKey: "\${OPENAI_API_KEY}" }
`;
    const c = parseConfigText(yaml, { OPENAI_API_KEY: 'sk-test' }, checks);
    expect(c.providers['openai']).toEqual({ api: 'openai', cluster: 'openai', apiKey: 'sk-test' });
    expect(problemsOf(() => parseConfigText(yaml, {}, checks))).toEqual(['providers.openai.apiKey: environment variable OPENAI_API_KEY is not set']);
  });

  it('does not let an env value inject YAML', () => {
    const c = parseConfigText('providers:\n  openai: { api: openai, cluster: openai, apiKey: "${K}" }\n', { K: 'x", cluster: "evil' }, checks);
    expect(c.providers['openai']!.cluster).toBe('openai');
  });

  it('accepts the shipped config/gateway.yaml', async () => {
    const c = await loadConfigFile(join(import.meta.dirname, '../../config/gateway.yaml'), {}, checks);
    expect(c.routes[0]!.fallback).toEqual(['gpt-4o', 'claude-sonnet-4', 'mistral-large']);
  });

  it('names an unreadable file', async () => {
    await expect(loadConfigFile('/nonexistent/gateway.yaml', {}, checks)).rejects.toThrow(/ENOENT/);
  });
});
