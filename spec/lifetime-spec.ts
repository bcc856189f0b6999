import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./fixtures/idle-script.ts', import.meta.url));

describe('a process using a tracker', () => {
  it('exits on its own once it stops using the tracker (no timer holds it open)', async () => {
    const child = spawn(process.execPath, ['--import=tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // A generous bound that only a hung process reaches; a normal run takes well under a second
    // once tsx has loaded.
    const code = await new Promise<number | null | 'hung'>((resolve) => {
      const guard = setTimeout(() => {
        child.kill('SIGKILL');
        resolve('hung');
      }, 15_000);
      child.on('exit', (exitCode) => {
        clearTimeout(guard);
        resolve(exitCode);
      });
    });
    expect(code, output).to.equal(0);
    expect(output).to.match(/settled used=\d+/);
  });
});
