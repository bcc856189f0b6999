import { skippedRow, type BenchRow } from './harness.js';
export async function benchFlood(_quick: boolean, _seconds: number): Promise<BenchRow[]> {
  return [skippedRow('B6', 'flood', '≤ 3× max', 'todo')];
}
