/**
 * Prometheus metrics (prom-client), one registry per server instance so
 * several servers can run in one process (tests).
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  connections: Gauge<'protocol'>;
  messages: Counter<'protocol'>;
  deliveries: Counter<'protocol'>;
  deliveryLatency: Histogram<'protocol'>;
  errors: Counter<'protocol' | 'code'>;
  /** Times a connection's socket stopped being read because FRAMES_QUEUED_MAX of its frames were unfinished. */
  readsPaused: Counter<'protocol'>;
  /** 1 while deliveries from other processes can arrive (always 1 with the in-process fan-out). */
  fanoutUp: Gauge;
  /** v1 connections closed with 1012 to resync, by why: this process's fan-out reconnected, or another's deliveries were lost. */
  resyncs: Counter<'reason'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'parley_' });
  const readsPaused = new Counter({
    name: 'parley_reads_paused_total',
    help: "Times a v1 connection's socket stopped being read because FRAMES_QUEUED_MAX of its frames were unfinished (it is read again once no more than half are left)",
    labelNames: ['protocol'],
    registers: [registry],
  });
  // Present at 0 from the start, so a rate over it is defined before the first pause.
  readsPaused.inc({ protocol: 'v1' }, 0);
  const resyncs = new Counter({
    name: 'parley_resyncs_total',
    help: 'v1 connections closed with 1012 (reconnect and sync): reason fanout-reconnected (this process was cut off from Redis) or deliveries-lost (another process was)',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of ['fanout-reconnected', 'deliveries-lost']) resyncs.inc({ reason }, 0);
  return {
    registry,
    connections: new Gauge({ name: 'parley_connections', help: 'Open WebSocket connections', labelNames: ['protocol'], registers: [registry] }),
    messages: new Counter({ name: 'parley_messages_total', help: 'Messages accepted from clients', labelNames: ['protocol'], registers: [registry] }),
    deliveries: new Counter({ name: 'parley_deliveries_total', help: 'Messages delivered to a recipient connection', labelNames: ['protocol'], registers: [registry] }),
    deliveryLatency: new Histogram({
      name: 'parley_delivery_latency_seconds',
      help: 'Time from accepting a message to handing it to the last recipient socket',
      labelNames: ['protocol'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    errors: new Counter({ name: 'parley_errors_total', help: 'Errors by protocol and code', labelNames: ['protocol', 'code'], registers: [registry] }),
    readsPaused,
    fanoutUp: new Gauge({ name: 'parley_fanout_up', help: 'Whether deliveries from other server processes can arrive (the Redis subscription is up); 1 with the in-process fan-out', registers: [registry] }),
    resyncs,
  };
}
