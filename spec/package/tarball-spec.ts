/**
 * The package as a user gets it: the packed tarball installed into a fresh project.
 *
 * One tarball and one temporary project per run. The tarball is `.pack/rxjs-memquota-<v>.tgz`
 * (written by `npm run check:pack`), reused when it is newer than every input of the build,
 * packed again (`npm pack`, whose `prepack` builds) otherwise. The project installs it with its
 * peers (`rxjs`, `prom-client`, `@opentelemetry/api`), `@types/node`, and the minimum
 * supported TypeScript (`MIN_TYPESCRIPT`), from npm's cache when it can.
 *
 * Checked there: every entry point loads through `import` and through `require` with the same
 * names, a tracker works and the prometheus entry accepts it (a class shared across entries);
 * a consumer type-checks with `moduleResolution` `node16`, `nodenext` and `bundler`, with the
 * minimum TypeScript and the repository's: the core entry with no `@types/node`,
 * `lib: ["es2022", "dom"]` and `skipLibCheck: false`, from ESM (`.d.ts`) and from CommonJS
 * (`.d.cts`); the sub-path entries with `@types/node`; `using` on the handles where the lib has
 * `Disposable` (see `programsFor` for which runs where).
 *
 * Set `KEEP_PACKAGE_PROJECT=1` to keep the temporary project (its path is printed), and
 * `SKIP_PACKAGE_SPEC=1` to skip this file while editing other code (ignored when `CI` is set).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The oldest TypeScript the published types support (stated in the README). */
const MIN_TYPESCRIPT = '5.0.4';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  exports: Record<string, unknown>;
};
const subpaths = Object.keys(pkg.exports).filter((s) => s !== './package.json');
const repoVersion = (name: string): string =>
  (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

/** Newest modification time under `path` (a file or a directory tree). */
function newest(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((entry) => newest(join(path, entry))));
}

/** The packed tarball: reused if newer than every build input, packed (and built) otherwise. */
async function tarball(): Promise<string> {
  const packDir = join(root, '.pack');
  const file = join(packDir, `${pkg.name}-${pkg.version}.tgz`);
  const inputs = ['index.ts', 'lib', 'operators', ...subpaths.filter((s) => s !== '.').map((s) => s.slice(2))];
  const inputsTime = Math.max(...[...inputs, 'package.json', 'rollup.config.js', 'tsconfig.build.json'].map((p) => newest(join(root, p))));
  if (newest(file) <= inputsTime) {
    mkdirSync(packDir, { recursive: true });
    await run('npm', ['pack', '--pack-destination', packDir, '--loglevel', 'warn'], { cwd: root, maxBuffer: 1 << 24 });
  }
  return file;
}

async function sh(cwd: string, file: string, args: string[]): Promise<string> {
  try {
    return (await run(file, args, { cwd, maxBuffer: 1 << 24, env: { ...process.env, NODE_OPTIONS: '' } })).stdout;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed in ${cwd}:\n${stdout}${stderr}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------
// The consumer: runtime scripts and type-checked files

/** Loads every entry point, works a tracker, reads a metric back; prints one JSON line. */
const runtimeScript = (load: string): string => `const entries = {};
for (const subpath of ${JSON.stringify(subpaths)}) {
  const mod = ${load}(subpath === '.' ? '${pkg.name}' : '${pkg.name}/' + subpath.slice(2));
  entries[subpath] = Object.keys(mod).filter((k) => k !== 'default' && k !== '__esModule').sort();
}
const core = ${load}('${pkg.name}');
const { Registry } = ${load}('prom-client');
const { collectMemquotaMetrics } = ${load}('${pkg.name}/prometheus');
const tracker = core.MemoryQuotaTracker.create({ max: 1 << 20, lowWater: 1 << 19 });
const account = tracker.newAccount();
const participation = account.registerParticipant({ getOldest: () => undefined, reclaim: () => 'collapsing' });
participation.claim(1000);
const registry = new Registry();
collectMemquotaMetrics(tracker, { registry });
const metric = await registry.getSingleMetric('memquota_used_bytes').get();
const afterClaim = { used: tracker.used, metric: metric.values[0].value, problems: tracker.audit().problems };
account.close();
const afterClose = { used: tracker.used, problems: tracker.audit().problems };
console.log(JSON.stringify({
  entries,
  isAccount: account instanceof core.Account,
  cost: core.memoryCost('abc'),
  afterClaim,
  afterClose,
}));
`;

const esmScript = runtimeScript('await import');
const cjsScript = `(async () => {\n${runtimeScript('require')}\n})().catch((err) => { console.error(err); process.exit(1); });\n`;

/** The core entry's public API, as a browser or server app would use it. */
const coreConsumer = (from: 'esm' | 'cjs'): string => `// ${from === 'esm' ? 'ESM: the "import" condition, .d.ts' : 'CommonJS: the "require" condition, .d.cts'}
import { Subject, asapScheduler } from 'rxjs';
import {
  MemoryQuotaTracker,
  MemoryReclaimedError,
  MemquotaError,
  memoryCost,
  memquota,
  memquotaQueue,
  shedOnPressure,
  type Account,
  type MemquotaEvent,
  type Participant,
} from '${pkg.name}';

const tracker: MemoryQuotaTracker = MemoryQuotaTracker.create({ max: 64 << 20, lowWater: 48 << 20 });
const server: Account = tracker.newAccount();
const participant: Participant = { getOldest: () => undefined, reclaim: () => 'collapsing' };
const participation = server.registerParticipant(participant);
participation.claim(memoryCost({ a: 'b' }));
const outgoing = new Subject<string>();
outgoing
  .pipe(shedOnPressure(tracker), memquota(() => server.newChild(), { scheduler: asapScheduler }))
  .subscribe({ error: (err: unknown) => err instanceof MemoryReclaimedError && err.reason });
const { sender, receiver } = memquotaQueue<Uint8Array>(server, { cost: (b) => b.byteLength });
sender.next(new Uint8Array(8));
receiver.subscribe();
tracker.events$.subscribe((event: MemquotaEvent) => event.type);
const used: number = tracker.used;
const isError: boolean = new Error() instanceof MemquotaError;
participation.close();
server.close();
export { used, isError };
`;

/** The sub-path entries (the Node one needs @types/node), and their handles with \`using\`. */
const nodeConsumer = (from: 'esm' | 'cjs'): string => `// ${from}: the Node-side entry points
import { Readable, Writable } from 'node:stream';
import { map } from 'rxjs';
import { MemoryQuotaTracker } from '${pkg.name}';
import { fromReadable, writeTo } from '${pkg.name}/node';
import { collectMemquotaMetrics, type MemquotaMetrics } from '${pkg.name}/prometheus';
import { observeMemquotaMetrics, type MemquotaInstruments } from '${pkg.name}/opentelemetry';
import { Registry } from 'prom-client';
import { metrics } from '@opentelemetry/api';

const tracker = MemoryQuotaTracker.create({ max: 1 << 20, lowWater: 1 << 19 });
const server = tracker.newAccount();
const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
fromReadable<Buffer>(Readable.from([Buffer.from('x')]))
  .pipe(
    map((chunk) => chunk.toString('utf8')),
    writeTo(sink, () => server.newChild()),
  )
  .subscribe();
const prometheus: MemquotaMetrics = collectMemquotaMetrics(tracker, { registry: new Registry(), prefix: 'app_' });
const otel: MemquotaInstruments = observeMemquotaMetrics(tracker, { meter: metrics.getMeter('consumer') });
export { prometheus, otel };
`;

const usingConsumer = `// \`using\` (TypeScript 5.2+) on the handles, where the lib declares Disposable
import { MemoryQuotaTracker } from '${pkg.name}';
import { collectMemquotaMetrics } from '${pkg.name}/prometheus';
import { Registry } from 'prom-client';

const tracker = MemoryQuotaTracker.create({ max: 1 << 20, lowWater: 1 << 19 });
export function work(): number {
  using account = tracker.newAccount();
  using participation = account.registerParticipant({ getOldest: () => undefined, reclaim: () => 'collapsing' });
  using metrics = collectMemquotaMetrics(tracker, { registry: new Registry() });
  participation.claim(10);
  const disposables: Disposable[] = [account, participation, metrics];
  return tracker.used + disposables.length;
}
`;

type Resolution = 'node16' | 'nodenext' | 'bundler';

interface Program {
  name: string;
  lib: string[];
  types: string[];
  files: string[];
  /**
   * Whether every declaration file is type-checked (TypeScript's own lib files excepted). The
   * core program always is: that is what proves the core types need neither @types/node nor a
   * newer lib. Checking @types/node itself costs ~10 s a run, so the sub-path program does it
   * once.
   */
  checkDeclarations: boolean;
}

/**
 * The programs to compile for one resolution mode, with the minimum TypeScript or (`modern`)
 * the repository's. The core consumer runs in every mode with both. The sub-path consumer
 * (with @types/node, and \`using\` on the handles) runs in full once, with the repository's
 * TypeScript under nodenext, and with the minimum under node16 (there without checking
 * @types/node's own files); arethetypeswrong (`npm run check:pack`) already resolves every
 * sub-path in every mode.
 */
function programsFor(resolution: Resolution, modern: boolean): Program[] {
  // Under bundler resolution every import takes the "import" condition: the ESM files only.
  const both = (base: string): string[] => (resolution === 'bundler' ? [`${base}.mts`] : [`${base}.mts`, `${base}.cts`]);
  const programs: Program[] = [
    { name: 'core, no @types/node, lib es2022+dom', lib: ['es2022', 'dom'], types: [], files: both('core'), checkDeclarations: true },
  ];
  if (modern ? resolution === 'nodenext' : resolution === 'node16') {
    programs.push({
      name: 'sub-paths, @types/node',
      lib: ['es2022'],
      types: ['node'],
      files: [...both('node'), ...(modern ? ['using.mts'] : [])],
      checkDeclarations: modern,
    });
  }
  if (modern && resolution === 'bundler') {
    programs.push({
      name: 'using, no @types/node, lib esnext.disposable',
      lib: ['es2022', 'esnext.disposable', 'dom'],
      types: [],
      files: ['using.mts'],
      checkDeclarations: true,
    });
  }
  return programs;
}

async function typecheck(project: string, tsc: string, resolution: Resolution, program: Program, tag: string): Promise<void> {
  const config = join(project, 'consumer', `tsconfig.${tag}.${resolution}.${program.files.join('+')}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: !program.checkDeclarations,
        skipDefaultLibCheck: true,
        target: 'es2022',
        module: resolution === 'bundler' ? 'esnext' : resolution,
        moduleResolution: resolution,
        lib: program.lib,
        types: program.types,
      },
      files: program.files,
    }),
  );
  try {
    await run(process.execPath, [tsc, '-p', config], { cwd: project, maxBuffer: 1 << 24 });
  } catch (err) {
    const { stdout = '' } = err as { stdout?: string };
    throw new Error(`tsc (${tag}) with moduleResolution ${resolution}, ${program.name}:\n${stdout}`, { cause: err });
  }
}

describe('package tarball', function () {
  // Packing, installing from npm's cache and a dozen tsc runs: slow by nature.
  this.timeout(240_000);

  let project = '';
  let repoTsc = '';
  let minTsc = '';

  before(async function () {
    // A shortcut for the edit-test loop; never honoured on CI.
    if (process.env.SKIP_PACKAGE_SPEC && !process.env.CI) this.skip();
    const file = await tarball();
    project = mkdtempSync(join(tmpdir(), 'rxjs-memquota-package-'));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '0.0.0' }));
    const deps = [
      file,
      `rxjs@${repoVersion('rxjs')}`,
      `prom-client@${repoVersion('prom-client')}`,
      `@opentelemetry/api@${repoVersion('@opentelemetry/api')}`,
      `@types/node@${repoVersion('@types/node')}`,
      `typescript@${MIN_TYPESCRIPT}`,
    ];
    await sh(project, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'error', ...deps]);
    mkdirSync(join(project, 'consumer'));
    writeFileSync(join(project, 'esm.mjs'), esmScript);
    writeFileSync(join(project, 'cjs.cjs'), cjsScript);
    writeFileSync(join(project, 'consumer', 'core.mts'), coreConsumer('esm'));
    writeFileSync(join(project, 'consumer', 'core.cts'), coreConsumer('cjs'));
    writeFileSync(join(project, 'consumer', 'node.mts'), nodeConsumer('esm'));
    writeFileSync(join(project, 'consumer', 'node.cts'), nodeConsumer('cjs'));
    writeFileSync(join(project, 'consumer', 'using.mts'), usingConsumer);
    repoTsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    minTsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc');
  });

  after(function () {
    if (!project) return;
    if (process.env.KEEP_PACKAGE_PROJECT) console.log(`      kept ${project}`);
    else rmSync(project, { recursive: true, force: true });
  });

  interface RuntimeReport {
    entries: Record<string, string[]>;
    isAccount: boolean;
    cost: number;
    afterClaim: { used: number; metric: number; problems: string[] };
    afterClose: { used: number; problems: string[] };
  }
  const reports: Partial<Record<'esm' | 'cjs', RuntimeReport>> = {};

  for (const [format, script] of [
    ['esm', 'esm.mjs'],
    ['cjs', 'cjs.cjs'],
  ] as const) {
    it(`${format === 'esm' ? 'import' : 'require'}: every entry point loads; a tracker works and its metric reads back`, async function () {
      const report = JSON.parse(await sh(project, process.execPath, [script])) as RuntimeReport;
      reports[format] = report;
      expect(Object.keys(report.entries)).to.deep.equal(subpaths);
      for (const subpath of subpaths) expect(report.entries[subpath], subpath).to.not.be.empty;
      expect(report.entries['.']).to.include.members(['MemoryQuotaTracker', 'Account', 'memoryCost', 'memquota']);
      expect(report.entries['./node']).to.include.members(['writeTo', 'fromReadable']);
      expect(report.entries['./prometheus']).to.include.members(['collectMemquotaMetrics']);
      expect(report.entries['./opentelemetry']).to.include.members(['observeMemquotaMetrics']);
      expect(report.isAccount).to.equal(true);
      expect(report.cost).to.equal(22); // 16 + 2 per UTF-16 unit
      expect(report.afterClaim).to.deep.equal({ used: 1000, metric: 1000, problems: [] });
      expect(report.afterClose).to.deep.equal({ used: 0, problems: [] });
    });
  }

  it('import and require give every entry point the same names', function () {
    if (!reports.esm || !reports.cjs) this.skip();
    expect(reports.cjs.entries).to.deep.equal(reports.esm.entries);
  });

  for (const resolution of ['node16', 'nodenext', 'bundler'] as const) {
    // In TypeScript 5.0, nodenext resolves exactly as node16: the minimum runs node16 and bundler.
    const withMinimum = resolution !== 'nodenext';
    it(`tsc, moduleResolution ${resolution}: ${withMinimum ? `TypeScript ${MIN_TYPESCRIPT} and ` : ''}the repository's`, async function () {
      const jobs = [
        ...(withMinimum ? programsFor(resolution, false) : []).map((p) => () => typecheck(project, minTsc, resolution, p, `ts${MIN_TYPESCRIPT}`)),
        ...programsFor(resolution, true).map((p) => () => typecheck(project, repoTsc, resolution, p, 'repo')),
      ];
      // Two at a time: the machine has two cores.
      const failures: string[] = [];
      const worker = async (): Promise<void> => {
        for (let job = jobs.shift(); job; job = jobs.shift()) await job().catch((err: Error) => failures.push(err.message));
      };
      await Promise.all([worker(), worker()]);
      expect(failures, failures.join('\n')).to.deep.equal([]);
    });
  }
});
