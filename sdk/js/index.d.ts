// Type declarations of the genesis-mesh Node.js SDK (index.js).

export declare const PROTOCOL_VERSION: 2;
export declare const MAX_LINE: number;
/** The error codes a handler may answer with. */
export declare const ANSWER_CODES: readonly ["invalid_input", "failed", "timeout", "unavailable", "too_big"];

/** One step of a signed provenance chain (verified by the node before ask resolves). */
export interface ProvenanceStep {
  agent: string;
  action: string;
  capability: string;
  detail: string;
  at: string;
  request_id: string;
  signer: string;
  sig: string;
}

export interface Provider {
  agent_id: string;
  node_public_key: string;
}

export interface Answer<T = unknown> {
  output: T;
  provider: Provider;
  provenance: ProvenanceStep[];
  /** One verified certificate per signer. */
  certificates: Record<string, unknown>[];
  raw: Record<string, unknown>;
}

export interface Request {
  requestId: string;
  capability: string;
  input: unknown;
  /** The requester's node key (base64). */
  requester: string;
  deadline: string;
  deadlineMs: number;
  authorized: string | null;
}

export type Handler<I = any, O = unknown> = (input: I, request: Request) => O | Promise<O>;

export interface ProvideOptions {
  description?: string;
  inputSchema?: Record<string, unknown>;
  agentId?: string;
  ttlS?: number;
  timeoutMs?: number;
}

export interface Logger {
  warn?(msg: string): void;
  error?(msg: string): void;
}

export interface ConnectOptions {
  timeoutMs?: number;
  logger?: Logger;
}

export declare class MeshError extends Error {
  /** One of the local API's codes: no_provider, provider_error, deadline_exceeded, unavailable, ... */
  code: string;
  detail: string;
  providerCode: string | null;
  provider: Provider | null;
  provenance: ProvenanceStep[] | null;
  constructor(code: string, message: string, extra?: { providerCode?: string; provider?: Provider; provenance?: ProvenanceStep[] });
}
export declare class NoProvider extends MeshError {}
/** Thrown by a handler with an answer code to choose its error answer. */
export declare class ProviderError extends MeshError {}
export declare class DeadlineExceeded extends MeshError {}
export declare class ConnectionLost extends MeshError {}

export declare class Node {
  readonly path: string;
  version: number;
  nodePublicKey: string;
  network: string;
  limits: Record<string, number>;
  provide<I = any, O = unknown>(capability: string, handler: Handler<I, O>, options?: ProvideOptions):
    Promise<{ capability: string; agentId: string; expiresAt: string }>;
  withdraw(capability: string, options?: { timeoutMs?: number }): Promise<void>;
  ask<T = unknown>(capability: string, input?: unknown, options?: { timeoutMs?: number }): Promise<Answer<T>>;
  status(): Promise<Record<string, unknown>>;
  serve(): Promise<void>;
  close(): void;
}

export declare function socketPath(where?: string): string;
export declare function connect(where?: string, options?: ConnectOptions): Promise<Node>;
