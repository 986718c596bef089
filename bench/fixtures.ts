// Realistic traffic for the driver: an OpenAI chat-completions request as Envoy forwards it to
// ext_proc (lower-case keys, pseudo-headers, values in raw_value) and a streamed SSE response.
import type { HeaderValueMsg } from './ext-proc-proto.js';

export const MODEL = 'gpt-4o-mini';
const SDK_VERSION = '6.30.1';

function hv(key: string, value: string): HeaderValueMsg {
  return { key, raw_value: Buffer.from(value, 'utf8') };
}

/** ~2 KB JSON chat request body (stream: true, usage requested). */
export function chatRequestBody(targetBytes = 2048): Buffer {
  const system =
    'You are a careful assistant for an internal support desk. Answer in plain English, cite the ' +
    'relevant knowledge-base article when one applies, never invent ticket numbers, and ask one ' +
    'clarifying question when the request is ambiguous. Keep answers under 200 words unless the ' +
    'user asks for detail. Use bullet points for multi-step procedures.';
  const history = [
    { role: 'user', content: 'Our VPN client keeps disconnecting every few minutes since Monday.' },
    {
      role: 'assistant',
      content:
        'Sorry to hear that. Which client version are you on, and does it happen on both Wi-Fi and wired connections?',
    },
  ];
  const base = {
    model: MODEL,
    messages: [{ role: 'system', content: system }, ...history, { role: 'user', content: '' }],
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0.2,
    max_tokens: 512,
    user: 'user-4821',
  };
  const filler =
    'Version 5.2.1 on Windows 11. It happens on both, and the log shows "tunnel keepalive timeout" ' +
    'right before each drop. I already reinstalled the client and rebooted the laptop twice. ' +
    'Colleagues on the same floor are fine. ';
  let content = '';
  for (;;) {
    const last = base.messages[base.messages.length - 1];
    if (last) last.content = content;
    const size = Buffer.byteLength(JSON.stringify(base));
    if (size >= targetBytes) break;
    const missing = targetBytes - size;
    content += missing >= filler.length ? filler : filler.slice(0, missing);
  }
  return Buffer.from(JSON.stringify(base), 'utf8');
}

/** Request headers as Envoy's ext_proc filter sends them (HTTP/1.1 client via Envoy listener). */
export function requestHeaders(requestId: string, contentLength: number): HeaderValueMsg[] {
  return [
    hv(':authority', 'llm-gateway:8080'),
    hv(':path', '/v1/chat/completions'),
    hv(':method', 'POST'),
    hv(':scheme', 'http'),
    hv('content-type', 'application/json'),
    hv('content-length', String(contentLength)),
    hv('accept', 'application/json'),
    hv('authorization', 'Bearer sk-proj-4kT9qVh2xWmZ8rB1nL6cY3pD0sF5gJ7aE2uK9oP4iR8tM1wX'),
    hv('user-agent', `OpenAI/JS ${SDK_VERSION}`),
    hv('x-stainless-lang', 'js'),
    hv('x-stainless-package-version', SDK_VERSION),
    hv('x-stainless-os', 'Linux'),
    hv('x-stainless-arch', 'x64'),
    hv('x-stainless-runtime', 'node'),
    hv('x-stainless-runtime-version', 'v20.20.2'),
    hv('x-stainless-retry-count', '0'),
    hv('x-stainless-timeout', '600000'),
    hv('accept-encoding', 'gzip, deflate'),
    hv('x-forwarded-proto', 'http'),
    hv('x-request-id', requestId),
  ];
}

/** Upstream response headers of a streaming chat completion. */
export function responseHeaders(): HeaderValueMsg[] {
  return [
    hv(':status', '200'),
    hv('date', 'Tue, 25 Nov 2025 15:10:00 GMT'),
    hv('content-type', 'text/event-stream; charset=utf-8'),
    hv('access-control-expose-headers', 'X-Request-ID'),
    hv('openai-organization', 'org-benchmark'),
    hv('openai-processing-ms', '231'),
    hv('openai-project', 'proj_benchmark'),
    hv('openai-version', '2020-10-01'),
    hv('x-ratelimit-limit-requests', '10000'),
    hv('x-ratelimit-limit-tokens', '10000000'),
    hv('x-ratelimit-remaining-requests', '9999'),
    hv('x-ratelimit-remaining-tokens', '9999488'),
    hv('x-ratelimit-reset-requests', '6ms'),
    hv('x-ratelimit-reset-tokens', '3ms'),
    hv('x-request-id', 'req_6b1f0c3e5a8d4f2b9c7e1a0d3f5b8c2e'),
    hv('cache-control', 'no-cache'),
    hv('x-envoy-upstream-service-time', '240'),
    hv('server', 'envoy'),
  ];
}

/**
 * SSE body of an OpenAI streaming chat completion, split into `chunks` transport chunks.
 * Events: role delta, content deltas, finish_reason, usage, `[DONE]`; at least `chunks` events,
 * spread over the chunks in order (one event per chunk when there are enough events).
 */
export function sseChunks(chunks: number): Buffer[] {
  const n = Math.max(1, Math.floor(chunks));
  const id = 'chatcmpl-AXb3kq9TzW1mVn7PqR2sL8dF4hJ0e';
  const head = `{"id":"${id}","object":"chat.completion.chunk","created":1764083400,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559",`;
  const ev = (rest: string): string => `data: ${head}${rest}}\n\n`;
  const words = ['Thanks', ' for', ' the', ' details', '.', ' A', ' keepalive', ' timeout', ' usually', ' means'];
  const contentEvents = Math.max(1, n - 4);
  const events: string[] = [];
  events.push(ev(`"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null`));
  for (let i = 0; i < contentEvents; i++) {
    const w = JSON.stringify(words[i % words.length] ?? ' x');
    events.push(ev(`"choices":[{"index":0,"delta":{"content":${w}},"logprobs":null,"finish_reason":null}],"usage":null`));
  }
  events.push(ev(`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null`));
  events.push(
    ev(
      `"choices":[],"usage":{"prompt_tokens":412,"completion_tokens":${contentEvents},"total_tokens":${412 + contentEvents},"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
    ),
  );
  events.push('data: [DONE]\n\n');
  const out: Buffer[] = [];
  const e = events.length;
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * e) / n);
    const to = Math.floor(((i + 1) * e) / n);
    out.push(Buffer.from(events.slice(from, to).join(''), 'utf8'));
  }
  return out;
}
