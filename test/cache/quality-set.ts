/**
 * The semantic cache's labeled quality set, written for this project. Each pair is a stored
 * prompt (`a`) and a new prompt (`b`). 'hit' pairs must be served from the cache (trivial
 * rewording: whitespace, case, punctuation, filler words); 'miss' pairs must never be (a
 * different number, negation, entity, unit, language, or system prompt). Used by
 * test/cache/quality.test.ts (zero false hits at the default threshold) and bench/cache.ts
 * (similarity distributions, threshold choice).
 */

export interface QualityPair {
  id: string;
  expect: 'hit' | 'miss';
  a: string;
  b: string;
  /** System prompts (default: the same for both). */
  systemA?: string;
  systemB?: string;
}

const SYS = 'You are a helpful assistant.';

export const QUALITY_SET: readonly QualityPair[] = [
  // ---- must hit: whitespace ----
  { id: 'ws-1', expect: 'hit', a: 'What is the capital of France?', b: 'What  is the capital of France?' },
  { id: 'ws-2', expect: 'hit', a: 'Explain how a hash table works.', b: '  Explain how a hash table works.\n' },
  { id: 'ws-3', expect: 'hit', a: 'List three uses of a linked list.', b: 'List three uses\tof a linked list.' },
  // ---- must hit: case ----
  { id: 'case-1', expect: 'hit', a: 'What is the capital of France?', b: 'what is the capital of france?' },
  { id: 'case-2', expect: 'hit', a: 'Explain recursion to a beginner.', b: 'EXPLAIN RECURSION TO A BEGINNER.' },
  { id: 'case-3', expect: 'hit', a: 'how do I reverse a string in Python', b: 'How do I reverse a string in python' },
  // ---- must hit: punctuation ----
  { id: 'punct-1', expect: 'hit', a: 'What is the capital of France?', b: 'What is the capital of France' },
  { id: 'punct-2', expect: 'hit', a: 'Explain how a hash table works.', b: 'Explain how a hash table works!!' },
  { id: 'punct-3', expect: 'hit', a: 'Give me a short poem about the sea', b: 'Give me a short poem about the sea...' },
  { id: 'punct-4', expect: 'hit', a: "What's the difference between TCP and UDP?", b: 'Whats the difference between TCP and UDP' },
  // ---- must hit: trivial rewording ----
  { id: 'word-1', expect: 'hit', a: 'What is the capital of France?', b: 'What is the capital of France, please?' },
  { id: 'word-2', expect: 'hit', a: 'Explain how a hash table works.', b: 'Please explain how a hash table works.' },
  { id: 'word-3', expect: 'hit', a: 'Summarize the plot of Hamlet in two sentences.', b: 'Summarize the plot of Hamlet in two sentences please' },
  { id: 'word-4', expect: 'hit', a: 'How do I reverse a string in Python?', b: 'How can I reverse a string in Python?' },
  { id: 'word-5', expect: 'hit', a: 'Write a haiku about autumn leaves.', b: 'Write a haiku about the autumn leaves.' },
  { id: 'word-6', expect: 'hit', a: 'What are the benefits of unit testing?', b: 'What are the main benefits of unit testing?' },
  { id: 'typo-1', expect: 'hit', a: 'Explain the difference between a process and a thread.', b: 'Explain the diference between a process and a thread.' },
  { id: 'order-1', expect: 'hit', a: 'What is the capital of France?', b: 'The capital of France is what?' },
  { id: 'unicode-1', expect: 'hit', a: 'Explain the café business model', b: 'Explain the cafe\u0301 business model' },
  { id: 'long-1', expect: 'hit',
    a: 'I am building a web service in Go that receives JSON over HTTP. How should I structure validation of the request body so that errors are reported clearly to the client?',
    b: 'I am building a web service in Go that receives JSON over HTTP. How should I structure the validation of the request body so errors are reported clearly to the client?' },

  // ---- must not hit: numbers ----
  { id: 'num-1', expect: 'miss', a: 'What is 17 times 23?', b: 'What is 17 times 24?' },
  { id: 'num-2', expect: 'miss', a: 'Convert 100 dollars to euros.', b: 'Convert 1000 dollars to euros.' },
  { id: 'num-3', expect: 'miss', a: 'What is 3.14 rounded to one decimal?', b: 'What is 3.15 rounded to one decimal?' },
  { id: 'num-4', expect: 'miss', a: 'Write a poem with 4 lines about the sea', b: 'Write a poem with 5 lines about the sea' },
  { id: 'num-5', expect: 'miss', a: 'What happened in 1969?', b: 'What happened in 1968?' },
  { id: 'num-6', expect: 'miss', a: 'What is 23 minus 17?', b: 'What is 17 minus 23?' },
  { id: 'num-7', expect: 'miss', a: 'List three uses of a linked list.', b: 'List four uses of a linked list.' },
  // ---- must not hit: negation ----
  { id: 'neg-1', expect: 'miss', a: 'Can I take ibuprofen with coffee?', b: "Can't I take ibuprofen with coffee?" },
  { id: 'neg-2', expect: 'miss', a: 'Should I use a mutex here?', b: 'Should I not use a mutex here?' },
  { id: 'neg-3', expect: 'miss', a: 'Write a function that sorts a list with recursion', b: 'Write a function that sorts a list without recursion' },
  { id: 'neg-4', expect: 'miss', a: 'Is it safe to eat raw eggs?', b: 'Is it never safe to eat raw eggs?' },
  { id: 'neg-5', expect: 'miss', a: 'Do I need a visa for Japan?', b: "Don't I need a visa for Japan?" },
  { id: 'neg-6', expect: 'miss', a: 'Why can we see the stars at night?', b: 'Why cannot we see the stars at night?' },
  // ---- must not hit: entities ----
  { id: 'ent-1', expect: 'miss', a: 'What is the population of Paris?', b: 'What is the population of London?' },
  { id: 'ent-2', expect: 'miss', a: 'Summarize the plot of Hamlet in two sentences.', b: 'Summarize the plot of Macbeth in two sentences.' },
  { id: 'ent-3', expect: 'miss', a: 'How do I install Postgres on Ubuntu?', b: 'How do I install Postgres on Debian?' },
  { id: 'ent-4', expect: 'miss', a: 'Who founded Microsoft?', b: 'Who founded Apple?' },
  { id: 'ent-5', expect: 'miss', a: 'Translate hello into Spanish', b: 'Translate hello into Italian' },
  { id: 'ent-6', expect: 'miss', a: 'Paris or Rome for a weekend trip?', b: 'London or Rome for a weekend trip?' },
  // ---- must not hit: units ----
  { id: 'unit-1', expect: 'miss', a: 'How long does it take to walk 5 km?', b: 'How long does it take to walk 5 miles?' },
  { id: 'unit-2', expect: 'miss', a: 'Convert 30 °C to Fahrenheit', b: 'Convert 30 °F to Celsius' },
  { id: 'unit-3', expect: 'miss', a: 'Is 2 GB of RAM enough for a build server?', b: 'Is 2 TB of RAM enough for a build server?' },
  { id: 'unit-4', expect: 'miss', a: 'How many km in a mile?', b: 'How many miles in a km?' },
  { id: 'unit-5', expect: 'miss', a: 'Bake the cake for 40 minutes?', b: 'Bake the cake for 40 seconds?' },
  // ---- must not hit: quoted strings ----
  { id: 'quote-1', expect: 'miss', a: 'Translate "good morning" into German', b: 'Translate "good evening" into German' },
  { id: 'quote-2', expect: 'miss', a: 'What does `git rebase` do?', b: 'What does `git merge` do?' },
  // ---- must not hit: language ----
  { id: 'lang-1', expect: 'miss', a: 'What is the capital of France?', b: 'Quelle est la capitale de la France ?' },
  { id: 'lang-2', expect: 'miss', a: 'Explain how a hash table works.', b: 'Erkläre, wie eine Hashtabelle funktioniert.' },
  { id: 'lang-3', expect: 'miss', a: 'How do I reverse a string in Python?', b: '¿Cómo invierto una cadena en Python?' },
  // ---- must not hit: different question, shared words ----
  { id: 'diff-1', expect: 'miss', a: 'Explain how a hash table works.', b: 'Explain how a hash table is resized.' },
  { id: 'diff-2', expect: 'miss', a: 'What is the capital of France?', b: 'What is the currency of France?' },
  { id: 'diff-3', expect: 'miss', a: 'How do I reverse a string in Python?', b: 'How do I reverse a list in Python?' },
  { id: 'diff-4', expect: 'miss', a: 'Write a haiku about autumn leaves.', b: 'Write a limerick about autumn leaves.' },
  { id: 'diff-5', expect: 'miss', a: 'What is the boiling point of water?', b: 'What is the freezing point of water?' },
  // ---- must not hit: different system prompt (scope) ----
  { id: 'sys-1', expect: 'miss', a: 'What is the capital of France?', b: 'What is the capital of France?', systemA: SYS, systemB: 'Answer in French.' },
  { id: 'sys-2', expect: 'miss', a: 'Explain recursion.', b: 'Explain recursion.', systemA: 'Answer in one sentence.', systemB: 'Answer in detail with code.' },
];

export const DEFAULT_SYSTEM = SYS;

/** One common word changed inside a long prompt: near-identical vectors, a different question. */
export const LONG_PROMPT_CHANGES: readonly QualityPair[] = [
  { id: 'long-diff-1', expect: 'miss',
    a: 'I am building a web service in Go that receives JSON over HTTP. How should I structure validation of the request body so that errors are reported clearly to the client?',
    b: 'I am building a web service in Go that receives JSON over HTTP. How should I structure logging of the request body so that errors are reported clearly to the client?' },
  { id: 'long-diff-2', expect: 'miss',
    a: 'Our team uses a monorepo with many small packages and a shared build cache. What is the best way to speed up the test suite on pull requests?',
    b: 'Our team uses a monorepo with many small packages and a shared build cache. What is the best way to speed up the deploy pipeline on pull requests?' },
];
