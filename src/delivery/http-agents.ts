/**
 * The HTTP agents every delivery goes through: the one place where sockets are pooled and where the
 * SSRF filter plugs in (connection-time address checks belong in the agent, because DNS answers can
 * change between registration and delivery). The engine takes a factory, so tests can swap the
 * agents without touching the sender.
 */
import type http from 'node:http';
import type https from 'node:https';
import { createDeliveryAgents } from '../security/ssrf-agent.js';

export interface HttpAgentOptions {
  /** CIDRs deliveries may reach although private/loopback (SSRF_ALLOW_CIDRS). */
  allowCidrs: readonly string[];
  /** Most sockets open to one receiver (host:port) at once; the engine's concurrency bounds the total. */
  maxSocketsPerHost: number;
  /** Idle keep-alive sockets kept per receiver for the next delivery. */
  maxFreeSocketsPerHost: number;
}

export interface HttpAgents {
  http: http.Agent;
  https: https.Agent;
}

export type HttpAgentFactory = (options: HttpAgentOptions) => HttpAgents;

/**
 * Keep-alive agents (a receiver getting thousands of deliveries a second must not pay a TCP and TLS
 * handshake each time) that refuse private, loopback, link-local and metadata addresses on every new
 * connection unless SSRF_ALLOW_CIDRS allows them (src/security/ssrf-agent.ts).
 */
export const createHttpAgents: HttpAgentFactory = (o) => createDeliveryAgents(o);

export function destroyHttpAgents(agents: HttpAgents): void {
  agents.http.destroy();
  agents.https.destroy();
}
