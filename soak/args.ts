/**
 * The soak's command line: `--seconds N`, `--seed N|random`, `--quiet`, `--hostile`.
 *
 * @module
 */

export function parseArgs(argv: readonly string[]): { seconds: number; seed: number; quiet: boolean; hostile: boolean } {
  let seconds = 60;
  let seed = 1;
  let quiet = false;
  let hostile = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    if (arg === '--seconds' || arg.startsWith('--seconds=')) {
      seconds = Number(value());
      if (!(seconds > 0 && seconds <= 3600)) usage('--seconds must be a number in (0, 3600]');
    } else if (arg === '--seed' || arg.startsWith('--seed=')) {
      const v = value();
      seed = v === 'random' ? Math.floor(Math.random() * 2 ** 32) : Number(v);
      if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) usage('--seed must be an integer in [0, 2**32) or "random"');
    } else if (arg === '--quiet') {
      quiet = true;
    } else if (arg === '--hostile') {
      hostile = true;
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  return { seconds, seed, quiet, hostile };
}

export function usage(problem: string): never {
  console.error(`soak: ${problem}\nusage: node --expose-gc --import=tsx soak/soak.ts [--seconds N] [--seed N|random] [--quiet] [--hostile]`);
  process.exit(2);
}


export const args = parseArgs(process.argv.slice(2));
const maybeGc = (globalThis as { gc?: () => void }).gc;
if (maybeGc === undefined) usage('run with node --expose-gc');
/** `gc()`, exposed by `--expose-gc`. */
export const gc: () => void = maybeGc;
