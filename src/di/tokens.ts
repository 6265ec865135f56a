/**
 * Injection tokens. Every constructor parameter of an injectable class names one of these with
 * `@inject(TOKEN)`: vitest's esbuild emits no decorator metadata, so types alone are not enough.
 */
export const TOKENS = {
  /** {@link NodeFactory}: makes nodes, owns the SSH connection pool. Root container. */
  NodeFactory: Symbol('NodeFactory'),
  /** {@link Logger}: diagnostics on stderr. Root container. */
  Logger: Symbol('Logger'),
  /** {@link Node}: the node this run works on. Run container. */
  Node: Symbol('Node'),
  /** {@link Doctor}. Run container. */
  Doctor: Symbol('Doctor'),
} as const;
