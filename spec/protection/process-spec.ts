import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AUTO_HEAP_SHARE, autoMax, availableMemory } from '../../lib/config.js';
import { YOUNG_GENERATION_RESERVE, usableHeap } from '../../lib/system.js';

const MiB = 1024 * 1024;
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a TypeScript fixture in a child Node process; kills it after `timeoutMs`. */
function run(nodeArgs: string[], script: string, args: string[] = [], timeoutMs = 20_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...nodeArgs, '--import=tsx', fixture(script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

const lastJson = (text: string): Record<string, unknown> => JSON.parse(text.trim().split('\n').filter((line) => line.startsWith('{')).pop()!);

describe('protecting the real process (child processes)', function () {
  this.timeout(30_000);

  it("'auto' fits inside a share of the usable heap under several --max-old-space-size", async () => {
    const sizes = [128, 256, 1024];
    const runs = await Promise.all(sizes.map((n) => run([`--max-old-space-size=${n}`], 'print-auto.ts')));
    const byMemory = autoMax(availableMemory() ?? totalmem());
    runs.forEach((ran, i) => {
      expect(ran.code, ran.stderr).to.equal(0);
      const { max, lowWater, softMax, limit } = lastJson(ran.stdout) as { max: number; lowWater: number; softMax: number; limit: number };
      expect(limit, `heap_size_limit under ${sizes[i]}`).to.equal(sizes[i]! * MiB + YOUNG_GENERATION_RESERVE);
      expect(usableHeap(limit)).to.equal(sizes[i]! * MiB);
      expect(max, `max under ${sizes[i]}`).to.be.at.most(AUTO_HEAP_SHARE * usableHeap(limit));
      expect(max).to.equal(Math.min(byMemory, Math.floor(AUTO_HEAP_SHARE * usableHeap(limit))));
      expect([lowWater, softMax]).to.deep.equal([Math.floor(max * 0.75), Math.floor(max * 0.9)]);
    });
  });

  it('a script with every protection running exits by itself (no timer or observer holds it open)', async () => {
    const ran = await run(['--expose-gc'], 'protected-idle.ts', [], 10_000);
    expect(ran.signal, 'killed: the process did not exit by itself').to.equal(null);
    expect(ran.code, ran.stderr).to.equal(0);
    expect(ran.stdout).to.include('idle used=900 pressure=high');
  });

  it('the heap guard saves a process whose costs under-state the truth 4×; without it the process dies of heap out of memory', async () => {
    // 6 × the usable heap produced, half of it for stalled clients: 3 × what the heap can hold.
    const flood = ['--share', '0.5', '--lie', '4', '--volume', '6', '--size', '4096', '--stalled', '0.5'];
    const [guarded, unguarded] = await Promise.all([
      run(['--max-old-space-size=64'], 'heap-flood.ts', flood),
      run(['--max-old-space-size=64'], 'heap-flood.ts', [...flood, '--no-guard']),
    ]);
    expect(guarded.code, guarded.stderr.slice(-2000)).to.equal(0);
    const result = lastJson(guarded.stdout) as { survived: boolean; causes: Record<string, number>; stats: { heapGuardRuns: number } };
    expect(result.survived).to.equal(true);
    expect(result.causes.heap, 'reclaim-start { cause: "heap" } seen').to.be.greaterThan(0);
    expect(result.stats.heapGuardRuns).to.equal(result.causes.heap);
    expect(result.causes.quota ?? 0, 'max (in under-stated bytes) was never the limit').to.equal(0);

    expect(unguarded.code).to.not.equal(0);
    expect(unguarded.stderr).to.include('heap out of memory');
    expect(unguarded.stdout).to.not.include('"survived"');
  });
});
