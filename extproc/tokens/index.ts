/**
 * @module tokens
 * Token counting: encodings per model family, chat overhead, the cheap upper bound for
 * reserving, and exact counts off the event loop.
 */
export { DEFAULT_ESTIMATION_FACTORS, encodingForModel, estimationFactor, isEstimatedFamily, modelFamily } from './encodings.js';
export type { EncodingName, EstimationFactors, ModelFamily } from './encodings.js';
export { countBpe } from './bpe.js';
export { sharedTokenCounter, TokenCounter, countTokens, closeSharedCounter } from './counter.js';
export type { TokenCounterOptions } from './counter.js';
export { chatParts, requestedMaxOutput } from './chat.js';
export type { ChatParts } from './chat.js';
export { estimateUpperBound, countRequestTokens, countOutputTokens } from './estimate.js';
export type { EstimateOptions, TokenEstimate } from './estimate.js';
