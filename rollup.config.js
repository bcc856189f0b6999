// The package build. Code through esbuild (TypeScript 6 only type-checks), types bundled by
// rollup-plugin-dts.
//
// One list of entry points: the package's `exports` map. `./dist/node/index.js` is built from
// `node/index.ts`. Adding an entry point is adding it to `exports`, `typesVersions` (types for
// moduleResolution node10) and typedoc.json; `npm run check:pack` fails until the three agree.
//
// - JavaScript: ONE build over all entries, ESM (`.js`) and CommonJS (`.cjs`), with
//   `preserveModules`: every source module is one file, shared by every entry that imports it,
//   so `rxjs-memquota/node` and `rxjs-memquota` see the same `Account` class (`instanceof`
//   holds across entries), and a bundler drops whole unused modules (`sideEffects: false`):
//   importing `memoryCost` alone pulls in `lib/cost.js` and nothing else. No source maps: the
//   output is unminified and one file per source module, so a stack trace already names the
//   source file and a nearby line; maps would more than double the package.
// - Types: ONE rollup-plugin-dts build over all entries, written twice: `.d.ts` (for `import`)
//   and `.d.cts` (for `require`), with the shared declarations in `_chunks/` (imported as
//   `.js` from `.d.ts` and as `.cjs` from `.d.cts`, so each condition stays in its own format).
import { readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import esbuild from 'rollup-plugin-esbuild';
import { dts } from 'rollup-plugin-dts';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

/** `{ 'node/index': 'node/index.ts', … }` from `exports['./node'].import.default === './dist/node/index.js'`. */
export const entries = Object.fromEntries(
  Object.entries(pkg.exports)
    .filter(([subpath]) => subpath !== './package.json')
    .map(([subpath, conditions]) => {
      const match = /^\.\/dist\/(.+)\.js$/.exec(conditions?.import?.default ?? '');
      if (!match) throw new Error(`package.json exports["${subpath}"].import.default must be ./dist/<source path>.js`);
      return [match[1], `${match[1]}.ts`];
    }),
);

// Peer dependencies (rxjs, and the optional prom-client, @opentelemetry/api) and Node built-ins
// are never bundled.
const peers = Object.keys(pkg.peerDependencies ?? {});
const external = (id) =>
  id.startsWith('node:') || builtinModules.includes(id) || peers.some((p) => id === p || id.startsWith(`${p}/`));

/** Empties dist/ before the build, so that no stale file of an older layout gets packed. */
const cleanDist = { name: 'clean-dist', buildStart: () => rmSync('dist', { recursive: true, force: true }) };

/**
 * The published types must not need `lib: esnext.disposable` (TS 5.2+) or `@types/node` in the
 * consumer: a browser project with `lib: ["es2022", "dom"]` must compile against them. The source
 * is compiled with that lib, so its declarations say `typeof Symbol.dispose` and `Disposable`
 * (`implements Disposable`, `extends Disposable`). Here, outside comments, `typeof Symbol.dispose`
 * becomes `DisposeSymbol`: `typeof Symbol.dispose` where the consumer's lib has it (so `using`
 * works) and a module-private unique symbol where it does not; `Disposable` becomes
 * `MemquotaDisposable`, the same shape keyed by `DisposeSymbol`. spec/package/tarball-spec.ts
 * compiles a consumer both ways (TypeScript 5.0 without the lib, the repository's with it).
 */
const DISPOSE_HEADER = [
  'declare const disposeFallback: unique symbol;',
  "/** `typeof Symbol.dispose` where the consumer's lib declares it (esnext.disposable, @types/node), else a stand-in. */",
  'type DisposeSymbol = SymbolConstructor extends { readonly dispose: infer S extends symbol } ? S : typeof disposeFallback;',
  "/** `Disposable` where the consumer's lib declares it; the same shape with the stand-in key otherwise. */",
  'type MemquotaDisposable = { [K in DisposeSymbol]: () => void };',
].join('\n');

const portableDispose = {
  name: 'portable-dispose',
  renderChunk(code) {
    // Code and JSDoc comments alternate; only code is rewritten.
    const parts = code.split(/(\/\*\*[\s\S]*?\*\/)/);
    const isCode = (_, i) => i % 2 === 0;
    if (!parts.some((part, i) => isCode(part, i) && /\bSymbol\.dispose\b|\bDisposable\b/.test(part))) return null;
    if (/\b(disposeFallback|DisposeSymbol|MemquotaDisposable)\b/.test(code)) {
      throw new Error('portable-dispose: the declarations already use a name this rewrite adds');
    }
    const out = parts.map((part, i) =>
      isCode(part, i) ? part.replace(/\btypeof Symbol\.dispose\b/g, 'DisposeSymbol').replace(/\bDisposable\b/g, 'MemquotaDisposable') : part,
    );
    const left = out.filter(isCode).join('').split('\n').filter((line) => /\bSymbol\.dispose\b/.test(line));
    if (left.length > 0) {
      throw new Error(`portable-dispose: declarations still name Symbol.dispose; extend this rewrite:\n${left.join('\n')}`);
    }
    const text = out.join('');
    const lastImport = [...text.matchAll(/^import .*;$/gm)].pop();
    const at = lastImport ? lastImport.index + lastImport[0].length + 1 : 0;
    return { code: `${text.slice(0, at)}${DISPOSE_HEADER}\n${text.slice(at)}`, map: null };
  },
};

export default [
  {
    input: entries,
    external,
    plugins: [cleanDist, esbuild({ target: 'es2022', tsconfig: 'tsconfig.build.json' })],
    output: [
      { dir: 'dist', format: 'es', preserveModules: true, entryFileNames: '[name].js' },
      { dir: 'dist', format: 'cjs', preserveModules: true, entryFileNames: '[name].cjs', exports: 'named' },
    ],
  },
  {
    input: entries,
    external,
    plugins: [dts({ tsconfig: 'tsconfig.build.json' }), portableDispose],
    output: [
      { dir: 'dist', format: 'es', entryFileNames: '[name].d.ts', chunkFileNames: '_chunks/[name].d.ts' },
      { dir: 'dist', format: 'es', entryFileNames: '[name].d.cts', chunkFileNames: '_chunks/[name].d.cts' },
    ],
  },
];
