import { describe, expect, it } from 'vitest';
import { extractNumbers, verifyMatch } from '../../extproc/cache/index.js';

describe('verifyMatch', () => {
  it.each([
    ['What is 17 times 23?', 'What is 17 times 24?', 'numbers'],
    ['What is 3.5 + 1?', 'What is 3.6 + 1?', 'numbers'],
    ['walk 5 km', 'walk 5 miles', 'numbers'],
    ['walk 5km', 'walk 5 mi', 'numbers'],
    ['costs $5', 'costs €5', 'numbers'],
    ['how many km in a mile', 'how many miles in a km', 'numbers'],
    ['Can I do this?', "Can't I do this?", 'negation'],
    ['can I do this?', 'cannot I do this?', 'negation'],
    ['Is it allowed?', 'Is it never allowed?', 'negation'],
    ['a sort with recursion', 'a sort without recursion', 'negation'],
    ['What is the population of Paris?', 'What is the population of London?', 'entities'],
    ['Translate "good morning"', 'Translate "good evening"', 'quotes'],
    ['Explain the validation step', 'Explain the logging step', 'content-words'],
  ])('%j vs %j → %s', (a, b, reason) => {
    expect(verifyMatch(a, b)).toEqual({ ok: false, reason });
    expect(verifyMatch(b, a)).toEqual({ ok: false, reason });
  });

  it.each([
    ['What is 17 times 23?', 'what is 17 times 23'],
    ['walk 5 km', 'walk 5km'],
    ['What is the capital of France?', 'what is the capital of france, please?'],
    ["Can't I do this?", 'can’t I do this'],
    ['Explain the difference between a process and a thread.', 'Explain the diference between a process and a thread'],
    ['Translate "good morning"', 'Please translate "good morning".'],
  ])('%j vs %j passes', (a, b) => {
    expect(verifyMatch(a, b)).toEqual({ ok: true });
  });

  it('reads thousands separators and number words', () => {
    expect(extractNumbers('1,000 km')).toEqual(['1000|km', 'unit:km']);
    expect(verifyMatch('List three uses', 'List four uses')).toEqual({ ok: false, reason: 'numbers' });
  });

  it('can leave content words to a semantic embedder', () => {
    expect(verifyMatch('how tall is it', 'what is its height', { contentWords: false })).toEqual({ ok: true });
  });
});
