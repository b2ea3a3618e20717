// The presence conformance suite on the in-process implementation (one node).
import { presenceConformance } from '../src/presence/conformance.ts';
import { InProcessPresence } from '../src/presence/in-process.ts';

presenceConformance(
  'in-process',
  async (n) => {
    if (n !== 1) throw new Error('in-process presence has exactly one node');
    const node = new InProcessPresence();
    return { nodes: [node], cleanup: () => node.close() };
  },
  1,
);
