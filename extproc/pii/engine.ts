/**
 * @module pii/engine
 * Compiles validated options once (regexes, deny-list tries) and hands out a `PiiSession` per
 * request with the actions in force for its route and caller. Scanners are cached per distinct
 * set of enabled types, so per-route rules cost nothing per request.
 */
import { builtinEntityTypes, type EntityType, type PiiAction } from './entities.js';
import { piiOptionsSchema, type PiiOptions } from './options.js';
import { PiiScanner, type CustomDetector, type DenyDetector } from './scanner.js';
import { PiiSession } from './session.js';
import { TermMatcher } from './termMatcher.js';

/** Who is asking, for `rules`. */
export interface PiiContext {
  readonly route?: string | undefined;
  readonly caller?: string | undefined;
}

const matches = (want: string | string[] | undefined, have: string | undefined): boolean =>
  want === undefined || (have !== undefined && (typeof want === 'string' ? want === have : want.includes(have)));

export class PiiEngine {
  private readonly custom: readonly CustomDetector[];
  private readonly deny: readonly DenyDetector[];
  private readonly allow: ReadonlySet<string>;
  private readonly baseActions: ReadonlyMap<EntityType, PiiAction>;
  private readonly scanners = new Map<string, PiiScanner>();
  private baseScanner: PiiScanner | undefined;

  /** Validates raw options (throws the schema's error, naming each bad key). */
  static fromOptions(raw: unknown = {}): PiiEngine {
    return new PiiEngine(piiOptionsSchema.parse(raw ?? {}));
  }

  constructor(readonly options: PiiOptions) {
    this.custom = options.custom.map((c) => ({ type: c.name, regex: new RegExp(c.pattern, `${c.flags}g`) }));
    this.deny = options.denyList.map((d) => ({ type: d.name, matcher: new TermMatcher(d.terms) }));
    this.allow = new Set(options.allowList.map((v) => v.toLowerCase()));
    const base = new Map<EntityType, PiiAction>();
    for (const t of builtinEntityTypes) base.set(t, 'tokenize');
    for (const c of options.custom) base.set(c.name, c.action);
    for (const d of options.denyList) base.set(d.name, d.action);
    for (const [t, a] of Object.entries(options.entities)) base.set(t, a);
    this.baseActions = base;
  }

  /** Every type's action for a request from `ctx` (stage-wide actions, then matching rules in order). */
  actionsFor(ctx: PiiContext = {}): ReadonlyMap<EntityType, PiiAction> {
    let actions: Map<EntityType, PiiAction> | undefined;
    for (const rule of this.options.rules) {
      if (!matches(rule.match.route, ctx.route) || !matches(rule.match.caller, ctx.caller)) continue;
      actions ??= new Map(this.baseActions);
      for (const [t, a] of Object.entries(rule.entities)) actions.set(t, a);
    }
    return actions ?? this.baseActions;
  }

  /** A fresh per-request session. */
  session(ctx: PiiContext = {}): PiiSession {
    const actions = this.actionsFor(ctx);
    return new PiiSession(this.scannerFor(actions), actions);
  }

  private scannerFor(actions: ReadonlyMap<EntityType, PiiAction>): PiiScanner {
    // Most requests match no rule: their scanner is found without building its key.
    if (actions === this.baseActions) return (this.baseScanner ??= this.scannerByKey(actions));
    return this.scannerByKey(actions);
  }

  private scannerByKey(actions: ReadonlyMap<EntityType, PiiAction>): PiiScanner {
    const enabled: string[] = [];
    for (const [t, a] of actions) if (a !== 'allow') enabled.push(t);
    const key = enabled.join(',');
    let scanner = this.scanners.get(key);
    if (scanner === undefined) {
      const on = new Set(enabled);
      scanner = new PiiScanner({
        builtins: new Set(builtinEntityTypes.filter((t) => on.has(t))),
        custom: this.custom.filter((c) => on.has(c.type)),
        deny: this.deny.filter((d) => on.has(d.type)),
        allow: this.allow,
      });
      this.scanners.set(key, scanner);
    }
    return scanner;
  }
}
