/** Thrown for any config the stand-in does not implement; the message names the field path. */
export class UnsupportedConfigError extends Error {
  constructor(message: string) {
    super(`envoy stand-in: ${message}`);
    this.name = 'UnsupportedConfigError';
  }
}
