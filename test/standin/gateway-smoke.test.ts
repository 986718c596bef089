/**
 * Smoke test: the real gateway (extproc/) behind the stand-in running the shipped envoy.yaml,
 * both the HCM ext_proc and the llm_chain per-attempt ext_proc pointing at it. Only checks that
 * the two agree on the protocol (no spurious messages, no errors) and traffic flows; the
 * gateway's behaviour is tested elsewhere (test/e2e).
 */
import { describe, expect, it } from 'vitest';
import { startGateway } from '../../extproc/app.js';
import { parseConfig } from '../../extproc/config/load.js';
import { startStandin } from '../envoy-standin/standin.js';
import { json, request, SHIPPED_ENVOY_YAML, startUpstream } from './helpers.js';

describe('gateway behind the stand-in', () => {
  it('serves a chat completion through both ext_proc filters of the shipped config', async () => {
    const gw = await startGateway({ config: parseConfig({ server: { host: '127.0.0.1', port: 0 } }), logSink: () => {} });
    const up = await startUpstream((r, res) => json(res, 200, { id: 'chatcmpl-1', object: 'chat.completion', echo: r.body.toString() }));
    const envoy = await startStandin({
      envoyYamlPath: SHIPPED_ENVOY_YAML,
      extProcAddress: `127.0.0.1:${gw.port}`,
      clusterEndpoints: { openai: up.url, anthropic: up.url, mistral: up.url, llm_chain: [[up.url], [up.url], [up.url], [up.url]] },
    });
    try {
      const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      const res = await request(`${envoy.url}/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text).object).toBe('chat.completion');
      expect(up.requests).toHaveLength(1);
      await envoy.stats.waitForRequests(1);
      expect(envoy.stats.counter('ext_proc.streams_started')).toBe(1);
      expect(envoy.stats.counter('upstream_ext_proc.streams_started')).toBe(1);
      for (const bad of ['spurious_msgs_received', 'streams_failed', 'message_timeouts']) {
        expect(envoy.stats.counter(`ext_proc.${bad}`)).toBe(0);
        expect(envoy.stats.counter(`upstream_ext_proc.${bad}`)).toBe(0);
      }
      expect(envoy.stats.errors).toEqual([]);
    } finally {
      await envoy.close();
      await gw.close(100);
      await up.close();
    }
  });
});
