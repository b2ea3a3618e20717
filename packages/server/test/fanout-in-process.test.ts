// The fan-out conformance suite on the in-process implementation (one node).
import { fanOutConformance } from '../src/fanout/conformance.ts';
import { InProcessFanOut } from '../src/fanout/in-process.ts';

fanOutConformance(
  'in-process',
  async (n) => {
    if (n !== 1) throw new Error('the in-process fan-out has exactly one node');
    const node = new InProcessFanOut();
    return { nodes: [node], cleanup: () => node.close() };
  },
  1,
);
