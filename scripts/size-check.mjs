// Tree-shaking check on the built ESM output (run `npm run build` first).
//
// A browser app that imports `memoryCost` alone, bundled by esbuild with minification, must
// get `memoryCost` and nothing else of the package: under 2 KB, no rxjs, no tracker, account
// or error class. The import goes through the package's own name (a self-reference, resolved
// by `exports` like a consumer's would be), so `sideEffects: false` applies as it would in an
// app. Exits 1 with the reason when a budget is broken.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

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
process.exitCode = failed ? 1 : 0;
