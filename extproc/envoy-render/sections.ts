/**
 * @module envoy-render/sections
 * The parts of the Envoy bootstrap that follow from the gateway config: the routes (a
 * `cluster_header` route per API path for what the route stage selects, and a default-chain
 * route for requests it did not touch), the chain clusters (`chain_<route>_from_<k>`, one priority
 * per remaining step) and one cluster per provider. Everything else is the fixed text of
 * template.ts.
 *
 * Output is YAML text in the shipped file's style (flow maps for small nodes, comments that say
 * why), indented for its place in the template.
 */
import type { GatewayConfig } from '../config/schema.js';
import { defaultProviderHosts } from '../config/schema.js';
import { buildCatalog, type CompiledRoute } from '../routing/catalog.js';
import { CLUSTER_HEADER, METADATA_NAMESPACE, UPSTREAM_HOST_METADATA_ATTRIBUTE, type EnvoyRetryPolicy } from '../routing/envoyChain.js';

/** API paths the gateway serves with routing (route name prefix, path prefix). */
export const routedPaths: readonly (readonly [string, string])[] = [
  ['chat_completions', '/v1/chat/completions'],
  ['messages', '/v1/messages'],
];

/**
 * APIs the route stage sends to a provider of their own dialect (no chain, no translation):
 * they only ever go where the route stage's x-gateway-cluster says.
 */
export const pinnedOnlyPaths: readonly (readonly [string, string])[] = [
  ['embeddings', '/v1/embeddings'],
  ['responses', '/v1/responses'],
];

/** A cluster that runs one route's chain from one start step. */
export interface ChainCluster {
  readonly name: string;
  readonly route: string;
  readonly startStep: number;
  /** Steps as priorities 0, 1, … */
  readonly steps: CompiledRoute['steps'];
}

/** Every chain cluster of a config, in route then start-step order. */
export function chainClusters(config: GatewayConfig): ChainCluster[] {
  const catalog = buildCatalog(config);
  return catalog.routes.flatMap((r) => r.clusters.map((name, k) => ({ name, route: r.name, startStep: k, steps: r.steps.slice(k) })));
}

/** YAML scalar: plain when safe, else double-quoted JSON. */
function q(s: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(s) && !/^(true|false|null|yes|no|on|off|~|[-+]?[0-9.]+)$/i.test(s) ? s : JSON.stringify(s);
}

const indent = (text: string, n: number): string =>
  text
    .split('\n')
    .map((l) => (l === '' ? l : ' '.repeat(n) + l))
    .join('\n');

/** `# ` comment lines of `text`, wrapped so that at `column` they end by column 100. */
function comment(text: string, column: number): string[] {
  const width = 100 - column - 2;
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(`# ${line}`);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(`# ${line}`);
  return lines;
}

function seconds(ms: number): string {
  return `${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(3).replace(/0+$/, '')}s`;
}

/** Tokens and codes every route's policy has (header signals can only add to the route's). */
function commonPolicy(routes: readonly CompiledRoute[]): EnvoyRetryPolicy {
  if (routes.length === 0) return { retryOn: ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes'], statusCodes: [502, 503, 504] };
  let tokens = [...routes[0]!.retry.retryOn];
  let codes = [...routes[0]!.retry.statusCodes];
  for (const r of routes.slice(1)) {
    tokens = tokens.filter((t) => r.retry.retryOn.includes(t));
    codes = codes.filter((c) => r.retry.statusCodes.includes(c));
  }
  if (codes.length === 0) tokens = tokens.filter((t) => t !== 'retriable-status-codes');
  return { retryOn: tokens, statusCodes: codes };
}

function retryPolicyYaml(p: EnvoyRetryPolicy, numRetries: number, hostAttempts: number): string {
  const lines = [
    `retry_on: ${q(p.retryOn.join(','))}`,
    ...(p.statusCodes.length ? [`retriable_status_codes: [${p.statusCodes.join(', ')}]`] : []),
    `num_retries: ${numRetries}`,
    ...(p.perTryTimeoutMs !== undefined ? [`per_try_timeout: ${seconds(p.perTryTimeoutMs)}`] : []),
    ...comment(
      'A provider silent for 60 s (no header, no byte) is treated as stalled: the attempt is reset and the next step tried while nothing has reached the client. Long enough for non-streaming reasoning requests, which send nothing until done.',
      20,
    ),
    'per_try_idle_timeout: 60s',
    'retry_back_off: { base_interval: 0.1s, max_interval: 1s }',
    ...comment('Each retry leaves the priorities (chain steps) already tried (facts §3.2).', 20),
    'retry_priority:',
    '  name: envoy.retry_priorities.previous_priorities',
    '  typed_config:',
    '    "@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
    '    update_frequency: 1',
    'retry_host_predicate:',
    '- name: envoy.retry_host_predicates.previous_hosts',
    '  typed_config:',
    '    "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
    `host_selection_retry_max_attempts: ${hostAttempts}`,
  ];
  return lines.join('\n');
}

/** Headers no provider should see. */
const REMOVE_ALWAYS = ['x-envoy-external-address'];

/** The virtual host's `routes:` items, indented for the template (14 spaces). */
export function renderRoutes(config: GatewayConfig): string {
  const catalog = buildCatalog(config);
  const longest = Math.max(1, ...catalog.routes.map((r) => r.steps.length));
  const out: string[] = [];
  out.push(
    ...comment(
      "(A) Cluster selected by the ext_proc route stage: it sets x-gateway-cluster (a chain cluster chain_<route>_from_<k>, or a provider cluster) and the chain's retry signals (x-envoy-max-retries, -retry-on, -retriable-status-codes, -upstream-rq-per-try-timeout-ms; facts §3.3: retry-on and codes add to this policy, max-retries replaces num_retries), so this policy holds only what every route's chain retries on. route_cache_action: CLEAR (below) makes the header mutation re-run route matching, so cluster_header reads it (facts §2.7). A client-sent x-gateway-cluster never gets this far: internal_only_headers strips it.",
      14,
    ),
  );
  const common = commonPolicy(catalog.routes);
  [...routedPaths, ...pinnedOnlyPaths].forEach(([name, prefix], i) => {
    out.push(`- name: ${name}_pinned`, '  match:', `    prefix: ${prefix}`, '    headers:', `    - name: ${CLUSTER_HEADER}`, '      present_match: true');
    if (i === 0) {
      out.push(
        '  route: &pinned_route',
        `    cluster_header: ${CLUSTER_HEADER}`,
        ...comment('An unknown cluster name is a server bug, not a missing page: answer 503 (the default, set explicitly because the proto comment wrongly says 404, facts §2.7).', 18).map((l) => `    ${l}`),
        '    cluster_not_found_response_code: SERVICE_UNAVAILABLE',
        '    # Host/SNI of the chosen provider instead of the client\'s Host.',
        '    auto_host_rewrite: true',
        '    # The route timeout spans the whole response stream (default 15 s would cut long',
        '    # generations, facts §3.4), so give streams 10 minutes.',
        '    timeout: 600s',
        '    retry_policy:',
        indent(retryPolicyYaml(common, 1, Math.max(3, longest)), 6),
      );
    } else {
      out.push('  route: *pinned_route');
    }
    out.push('  # The routing header and the edge\'s x-envoy-external-address stay inside.', `  request_headers_to_remove: [${[CLUSTER_HEADER, ...REMOVE_ALWAYS].join(', ')}]`);
  });
  const def = catalog.routes[catalog.routes.length - 1];
  if (def) {
    out.push(
      ...comment(
        `(B) No decision from the route stage (not configured): the default route "${def.name}" runs its whole chain, with its retry policy here. Each retry goes to the next untried priority, and the per-attempt ext_proc rewrites the request for the step of the host picked (facts §3.1).`,
        14,
      ),
    );
    routedPaths.forEach(([name, prefix], i) => {
      out.push(`- name: ${name}_chain`, `  match: { prefix: ${prefix} }`);
      if (i === 0) {
        out.push(
          '  route: &chain_route',
          `    cluster: ${def.clusters[0]}`,
          '    auto_host_rewrite: true',
          '    timeout: 600s',
          '    retry_policy:',
          indent(retryPolicyYaml(def.retry, def.steps.length - 1, Math.max(3, def.steps.length)), 6),
        );
      } else {
        out.push('  route: *chain_route');
      }
      out.push(`  request_headers_to_remove: [${REMOVE_ALWAYS.join(', ')}]`);
    });
  }
  return indent(out.join('\n'), 14);
}

const CIRCUIT_BREAKERS = [
  'circuit_breakers:',
  '  thresholds:',
  '  - { max_requests: 10000, max_pending_requests: 10000, max_connections: 10000, max_retries: 1000 }',
];

/** The per-attempt upstream filters of every chain cluster (the first one defines the anchor). */
function attemptProtocolOptions(first: boolean): string[] {
  if (!first) return ['typed_extension_protocol_options: *attempt_filters'];
  return [
    'typed_extension_protocol_options: &attempt_filters',
    '  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:',
    '    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    '    explicit_http_config:',
    '      http_protocol_options: {}',
    '    # Upstream HTTP filters run once per attempt (facts §2.2); upstream_codec must be last.',
    '    http_filters:',
    '    # Per-attempt rewrite for the step Envoy picked: the server answers request_headers with',
    '    # CONTINUE_AND_REPLACE, the provider\'s body, path and auth headers, and dynamic metadata',
    '    # content_length.',
    '    - name: envoy.filters.http.ext_proc',
    '      typed_config:',
    '        "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
    '        grpc_service:',
    '          envoy_grpc: { cluster_name: ext_proc }',
    '          # Tells the server this stream is a per-attempt upstream stream, not a new request:',
    '          # it runs only the stages meant for each try (extproc/server/processStream.ts roleOf).',
    '          initial_metadata:',
    '          - { key: x-gateway-filter, value: attempt }',
    '        failure_mode_allow: false',
    '        message_timeout: 5s',
    '        max_message_timeout: 30s',
    '        # The step of the host chosen for this attempt (route, step, model, provider in its',
    '        # endpoint metadata). Read it here rather than from :authority, whose value at this',
    '        # point depends on auto_host_rewrite timing (facts §3.6). Only Envoy state: right even',
    '        # when this stream and the request\'s router stream reach different gateway replicas.',
    '        request_attributes:',
    `        - "${UPSTREAM_HOST_METADATA_ATTRIBUTE}"`,
    `        - "xds.upstream_host_metadata.filter_metadata['${METADATA_NAMESPACE}']['provider']"`,
    '        - "xds.cluster_name"',
    '        - "xds.route_name"',
    '        processing_mode:',
    '          request_header_mode: SEND',
    '          request_body_mode: NONE',
    '          request_trailer_mode: SKIP',
    '          response_header_mode: SKIP',
    '          response_body_mode: NONE',
    '          response_trailer_mode: SKIP',
    '        # Lets the server ask for the body (mode_override request_body_mode: BUFFERED) when it',
    '        # cannot answer from what the downstream filter already saw.',
    '        allow_mode_override: true',
    '        metadata_options:',
    `          receiving_namespaces: { untyped: [${METADATA_NAMESPACE}] }`,
    `          forwarding_namespaces: { untyped: [${METADATA_NAMESPACE}] }`,
    '    # CONTINUE_AND_REPLACE removes content-length (facts §2.11); restore it from the metadata',
    '    # the upstream ext_proc just wrote (pattern of envoyproxy/ai-gateway).',
    '    - name: envoy.filters.http.header_mutation',
    '      typed_config:',
    '        "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation',
    '        mutations:',
    '          request_mutations:',
    '          - append:',
    '              append_action: ADD_IF_ABSENT',
    '              header:',
    '                key: content-length',
    `                value: "%DYNAMIC_METADATA(${METADATA_NAMESPACE}:content_length)%"`,
    '    - name: envoy.filters.http.upstream_codec',
    '      typed_config:',
    '        "@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec',
  ];
}

function chainTls(first: boolean): string[] {
  if (!first) return ['transport_socket: *chain_tls'];
  return [
    'transport_socket: &chain_tls',
    '  name: envoy.transport_sockets.tls',
    '  typed_config:',
    '    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    '    # SNI and certificate check follow the endpoint hostname, which differs per priority.',
    '    auto_host_sni: true',
    '    auto_sni_san_validation: true',
    '    common_tls_context:',
    '      validation_context:',
    '        trusted_ca: { filename: /etc/ssl/certs/ca-certificates.crt }',
  ];
}

/** The chain clusters and provider clusters, indented for the template (2 spaces). */
export function renderClusters(config: GatewayConfig): string {
  const out: string[] = [];
  const chains = chainClusters(config);
  const providerClusters = new Map<string, { host: string; port: number; providers: string[] }>();
  for (const [name, p] of Object.entries(config.providers)) {
    const host = p.host ?? defaultProviderHosts[p.api];
    const port = p.port ?? 443;
    const seen = providerClusters.get(p.cluster);
    if (seen && (seen.host !== host || seen.port !== port)) {
      throw new Error(`providers.${name}.cluster: cluster "${p.cluster}" is shared with provider "${seen.providers[0]}" but reaches another host`);
    }
    if (seen) seen.providers.push(name);
    else providerClusters.set(p.cluster, { host, port, providers: [name] });
  }
  for (const c of chains) {
    if (providerClusters.has(c.name) || c.name === 'ext_proc') throw new Error(`cluster name "${c.name}" is used twice (a provider cluster has a chain cluster's name)`);
  }
  if (chains.length > 0) {
    out.push(
      '# Chain clusters, one per route and start step: chain_<route>_from_<k> holds steps k, k+1, …',
      '# of the route\'s chain as priorities 0, 1, … The route stage starts a request on from_0, or on',
      '# the first step that is not cooled down (a provider that just answered 429/5xx), so new',
      '# requests do not pay that failed attempt again. Each endpoint names its step in metadata',
      '# (filter_metadata.ai_gateway: route, step = index in the full chain, model, provider); the',
      '# per-attempt ext_proc reads it to rewrite the attempt for that step.',
    );
  }
  chains.forEach((c, i) => {
    const first = i === 0;
    out.push(
      `- name: ${q(c.name)}`,
      `  # route "${c.route}" from step ${c.startStep}: ${c.steps.map((s) => s.model).join(' → ')}`,
      '  type: STRICT_DNS',
      '  dns_lookup_family: V4_ONLY',
      '  connect_timeout: 5s',
      '  per_connection_buffer_limit_bytes: 52428800',
    );
    if (first) {
      out.push(
        '  # LLM calls are long-lived: lift the 1024 concurrent-request default; max_retries bounds',
        '  # concurrent retries (default 3) so a provider outage does not stall failover for everyone.',
      );
    }
    out.push(...CIRCUIT_BREAKERS.map((l) => `  ${l}`));
    out.push(...attemptProtocolOptions(first).map((l) => `  ${l}`));
    out.push('  load_assignment:', `    cluster_name: ${q(c.name)}`, '    endpoints:');
    c.steps.forEach((s, p) => {
      out.push(
        `    - priority: ${p}`,
        '      lb_endpoints:',
        '      - endpoint:',
        `          hostname: ${q(s.host)}`,
        '          address:',
        `            socket_address: { address: ${q(s.host)}, port_value: ${s.port} }`,
        '        metadata:',
        '          filter_metadata:',
        `            ${METADATA_NAMESPACE}: { route: ${q(c.route)}, step: ${s.index}, model: ${q(s.model)}, provider: ${q(s.provider)} }`,
      );
    });
    out.push(...chainTls(first).map((l) => `  ${l}`));
    out.push('');
  });
  if (providerClusters.size > 0) out.push('# One cluster per provider, for a cluster the route stage pins (no chain).');
  for (const [name, pc] of providerClusters) {
    out.push(
      `- name: ${q(name)}`,
      '  type: STRICT_DNS',
      '  dns_lookup_family: V4_ONLY',
      '  connect_timeout: 5s',
      '  per_connection_buffer_limit_bytes: 52428800',
      ...CIRCUIT_BREAKERS.map((l) => `  ${l}`),
      '  load_assignment:',
      `    cluster_name: ${q(name)}`,
      '    endpoints:',
      '    - lb_endpoints:',
      '      - endpoint:',
      `          hostname: ${q(pc.host)}`,
      '          address:',
      `            socket_address: { address: ${q(pc.host)}, port_value: ${pc.port} }`,
      '  transport_socket:',
      '    name: envoy.transport_sockets.tls',
      '    typed_config:',
      '      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      `      sni: ${q(pc.host)}`,
      '      common_tls_context:',
      '        validation_context:',
      '          trusted_ca: { filename: /etc/ssl/certs/ca-certificates.crt }',
      '          match_typed_subject_alt_names:',
      '          - san_type: DNS',
      `            matcher: { exact: ${q(pc.host)} }`,
    );
  }
  while (out[out.length - 1] === '') out.pop();
  return indent(out.join('\n'), 2);
}
