/** The prompt summary and the documented complexity heuristic. */
import { describe, expect, it } from 'vitest';
import { complexityScore, summarizePrompt } from '../../extproc/routing/complexity.js';

describe('summarizePrompt', () => {
  it('reads OpenAI bodies: text parts, images, tools, JSON mode, max tokens', () => {
    const s = summarizePrompt({
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: '```js\nx\n```' }, { type: 'image_url', image_url: { url: 'data:' } }] },
      ],
      tools: [{ type: 'function', function: { name: 'f' } }],
      response_format: { type: 'json_object' },
      max_completion_tokens: 50,
    });
    expect(s).toMatchObject({ turns: 2, codeBlocks: 1, tools: 1, images: 1, json: true, maxOutputTokens: 50 });
    expect(s.promptTokens).toBeGreaterThan(85);
  });

  it('reads Anthropic bodies: system blocks, tool_result content, images', () => {
    const s = summarizePrompt({
      system: [{ type: 'text', text: 'abcd'.repeat(10) }],
      messages: [{ role: 'user', content: [{ type: 'tool_result', content: [{ type: 'text', text: 'abcd' }] }, { type: 'image', source: {} }] }],
      max_tokens: 1024,
    });
    expect(s).toMatchObject({ chars: 44, turns: 1, images: 1, maxOutputTokens: 1024 });
  });
});

describe('complexityScore', () => {
  const base = { chars: 0, turns: 1, codeBlocks: 0, tools: 0, images: 0, json: false, promptTokens: 0, maxOutputTokens: 0 };
  it('follows the documented weights', () => {
    expect(complexityScore(base)).toBe(0);
    expect(complexityScore({ ...base, promptTokens: 8000 })).toBe(0.45);
    expect(complexityScore({ ...base, turns: 11 })).toBe(0.2);
    expect(complexityScore({ ...base, codeBlocks: 3 })).toBe(0.2);
    expect(complexityScore({ ...base, tools: 1 })).toBe(0.09);
    expect(complexityScore({ ...base, promptTokens: 1e6, turns: 100, codeBlocks: 50, tools: 50 })).toBe(1);
  });
  it('is deterministic and monotonic in length', () => {
    const scores = [0, 1000, 4000, 8000, 16000].map((t) => complexityScore({ ...base, promptTokens: t }));
    expect(scores).toEqual([...scores].sort((a, b) => a - b));
    expect(complexityScore({ ...base, promptTokens: 4000 })).toBe(complexityScore({ ...base, promptTokens: 4000 }));
  });
});
