// /proc readings for the server benchmark: per-process CPU time, RSS, and
// machine CPU split so that "foreign" load (work that is not ours) can be
// told apart from our own server, load generator and parent.
import { readFileSync } from 'node:fs';

const HZ = 100; // getconf CLK_TCK on Linux/x86-64

/** user+system CPU seconds of a process (its threads included), or NaN. */
export function procCpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / HZ; // fields 14, 15 (utime, stime)
  } catch {
    return NaN;
  }
}

/** VmRSS of a process in bytes, or NaN. */
export function procRss(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Jiffies per CPU line of /proc/stat: task = user+nice+system (what
 * processes are charged), irq = irq+softirq (on loopback our own TCP
 * receive path lands here too), steal (the hypervisor), total.
 */
export function cpuStat() {
  const out = {};
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^(cpu\d*)\s+(.*)$/.exec(line);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number);
      const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
      out[m[1]] = { task: user + nice + system, irq: irq + softirq, steal, total: v.slice(0, 8).reduce((a, b) => a + b, 0), idle: idle + iowait };
    }
  } catch {
    return null;
  }
  return out;
}

/** A snapshot for `loadBetween`. */
export function snapshot(pids) {
  return { t: performance.now(), stat: cpuStat(), cpu: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procCpuSeconds(pid)])) };
}

/**
 * CPU use between two snapshots, in vCPUs (seconds of CPU per second):
 * each of our processes; the machine's task time not accounted for by them
 * (foreign), machine-wide and per CPU (pinned layout: server on cpu0, load
 * generator on cpu1); irq+softirq and steal, machine-wide.
 */
export function loadBetween(a, b, { serverCpu = 0, loadCpu = 1 } = {}) {
  const wall = (b.t - a.t) / 1000;
  const ours = Object.fromEntries(Object.keys(a.cpu).map((k) => [k, (b.cpu[k] - a.cpu[k]) / wall]));
  const res = { wallSeconds: wall, ours };
  if (!a.stat || !b.stat) return res;
  const d = (cpu, field) => (b.stat[cpu][field] - a.stat[cpu][field]) / HZ / wall;
  const oursTotal = Object.values(ours).reduce((x, y) => x + (Number.isFinite(y) ? y : 0), 0);
  res.foreign = Math.max(0, d('cpu', 'task') - oursTotal);
  res.irq = d('cpu', 'irq');
  res.steal = d('cpu', 'steal');
  if (b.stat[`cpu${serverCpu}`]) res.foreignOnServerCpu = Math.max(0, d(`cpu${serverCpu}`, 'task') - (ours.server || 0));
  if (b.stat[`cpu${loadCpu}`]) res.foreignOnLoadCpu = Math.max(0, d(`cpu${loadCpu}`, 'task') - (ours.load || 0));
  return res;
}
