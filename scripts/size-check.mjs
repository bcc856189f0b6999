// Tree-shaking check on the built ESM output (run `npm run build` first).
//
// A browser app that imports `memoryCost` alone, bundled by esbuild with minification, must
// get `memoryCost` and nothing else of the package: under 2 KB, no rxjs, no tracker, account
// or error class. The import goes through the package's own name (a self-reference, resolved
// by `exports` like a consumer's would be), so `sideEffects: false` applies as it would in an
// app. The same app through rollup (which does not read `sideEffects` without a resolver
// plugin, and judges each statement) must also render nothing of the package but `memoryCost`.
// Exits 1 with the reason when a budget is broken.
import { build } from 'esbuild';
import { rollup } from 'rollup';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Each case: what the app imports, the byte budget, the package modules allowed in the output. */
const cases = [
  {
    name: 'memoryCost alone',
    code: "import { memoryCost } from 'rxjs-memquota';\nconsole.log(memoryCost({ a: 'b' }));\n",
    budget: 2048,
    allowed: ['dist/lib/cost.js'],
  },
];

let failed = false;
for (const c of cases) {
  const result = await build({
    stdin: { contents: c.code, resolveDir: root, sourcefile: 'app.js', loader: 'js' },
    absWorkingDir: root,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const bytes = result.outputFiles[0].contents.byteLength;
  const [output] = Object.values(result.metafile.outputs);
  // Modules that put bytes into the output (esbuild lists every module it read in `inputs`).
  const contributing = Object.entries(output.inputs)
    .filter(([file, info]) => info.bytesInOutput > 0 && file !== 'app.js')
    .map(([file]) => file);
  const extra = contributing.filter((file) => !c.allowed.includes(file));
  const ok = bytes < c.budget && extra.length === 0;
  failed ||= !ok;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.name}: ${bytes} B minified (budget ${c.budget} B); modules: ${contributing.join(', ')}`);
  if (extra.length > 0) console.log(`     pulled in beyond ${c.allowed.join(', ')}: ${extra.join(', ')}`);
}
// rollup: the package resolved by hand to dist/index.js, rxjs left external.
for (const c of cases) {
  const bundle = await rollup({
    input: 'app.js',
    external: (id) => id === 'rxjs' || id.startsWith('rxjs/'),
    plugins: [
      {
        name: 'app',
        resolveId: (id) => (id === 'app.js' ? id : id === 'rxjs-memquota' ? join(root, 'dist', 'index.js') : null),
        load: (id) => (id === 'app.js' ? c.code : null),
      },
    ],
    onwarn: () => {},
  });
  const { output } = await bundle.generate({ format: 'es' });
  await bundle.close();
  const rendered = Object.entries(output[0].modules)
    .filter(([id, info]) => info.renderedLength > 0 && id !== 'app.js')
    .map(([id]) => id.slice(root.length).replaceAll('\\', '/'));
  const extra = rendered.filter((file) => !c.allowed.includes(file));
  failed ||= extra.length > 0;
  console.log(`${extra.length === 0 ? 'ok  ' : 'FAIL'} ${c.name} (rollup): modules rendered: ${rendered.join(', ')}`);
}

process.exitCode = failed ? 1 : 0;
