// The package as npm would publish it: packs it (the `prepack` script builds dist/), then
// checks the tarball with publint (strict: warnings fail too) and arethetypeswrong (every
// entry point, every resolution mode: node10, node16 from CJS and from ESM, bundler), and
// checks that the lists of entry points agree and that the tarball holds what a user needs and
// nothing else. The tarball stays in .pack/ for spec/package/tarball-spec.ts to reuse.
//
// Usage: node scripts/check-pack.mjs [--no-pack]   (--no-pack: check the tarball already in .pack/)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const packDir = join(root, '.pack');
const tarball = join(packDir, `${pkg.name.replace(/^@/, '').replace('/', '-')}-${pkg.version}.tgz`);
const bin = (name) => join(root, 'node_modules', '.bin', name);

const problems = [];
const step = (title) => console.log(`\n── ${title}`);

if (!process.argv.includes('--no-pack')) {
  step('npm pack (prepack builds dist/)');
  mkdirSync(packDir, { recursive: true });
  execFileSync('npm', ['pack', '--pack-destination', packDir, '--loglevel', 'warn'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
  .split('\n')
  .filter(Boolean)
  .map((f) => f.replace(/^package\//, ''));
console.log(`${tarball.slice(root.length)}: ${(statSync(tarball).size / 1024).toFixed(1)} KiB packed, ${files.length} files`);

step('entry points agree: exports, typesVersions, typedoc.json, tarball');
const subpaths = Object.keys(pkg.exports).filter((s) => s !== './package.json');
const typedoc = JSON.parse(readFileSync(join(root, 'typedoc.json'), 'utf8'));
for (const subpath of subpaths) {
  const { import: esm, require: cjs } = pkg.exports[subpath];
  const base = esm.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '');
  const expected = {
    import: { types: `./dist/${base}.d.ts`, default: `./dist/${base}.js` },
    require: { types: `./dist/${base}.d.cts`, default: `./dist/${base}.cjs` },
  };
  if (JSON.stringify({ import: esm, require: cjs }) !== JSON.stringify(expected)) {
    problems.push(`exports["${subpath}"] is not ${JSON.stringify(expected)} (types first in each condition)`);
  }
  for (const file of [...Object.values(expected.import), ...Object.values(expected.require)]) {
    if (!files.includes(file.slice(2))) problems.push(`exports["${subpath}"]: ${file} is not in the tarball`);
  }
  if (!typedoc.entryPoints.includes(`${base}.ts`)) problems.push(`typedoc.json entryPoints lacks ${base}.ts (for ${subpath})`);
  if (subpath !== '.') {
    const mapped = pkg.typesVersions?.['*']?.[subpath.slice(2)];
    if (JSON.stringify(mapped) !== JSON.stringify([expected.require.types])) {
      problems.push(`typesVersions["*"]["${subpath.slice(2)}"] must be ["${expected.require.types}"] (types for moduleResolution node10)`);
    }
  }
}
if (typedoc.entryPoints.length !== subpaths.length) problems.push(`typedoc.json has ${typedoc.entryPoints.length} entry points, exports ${subpaths.length}`);

step('tarball contents');
for (const needed of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md']) {
  if (!files.includes(needed)) problems.push(`${needed} is not in the tarball`);
}
const stray = files.filter((f) => !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/.+\.(js|cjs|d\.ts|d\.cts|js\.map|cjs\.map))$/.test(f));
if (stray.length > 0) problems.push(`unexpected files in the tarball: ${stray.join(', ')}`);
const maps = files.filter((f) => f.endsWith('.map'));
const mapped = files.filter((f) => /\.(c?js)$/.test(f));
console.log(`${mapped.length} modules (.js + .cjs), ${maps.length} source maps, ${files.filter((f) => /\.d\.c?ts$/.test(f)).length} declaration files`);

step('publint --strict');
if (spawnSync(bin('publint'), ['run', tarball, '--strict'], { stdio: 'inherit' }).status !== 0) problems.push('publint failed');

step('arethetypeswrong');
// --no-definitely-typed: no registry look-up for @types of the peers; --profile strict: node10 too.
const attw = spawnSync(bin('attw'), [tarball, '--profile', 'strict', '--no-definitely-typed', '--no-emoji', '--format', 'table'], {
  stdio: 'inherit',
});
if (attw.status !== 0) problems.push('arethetypeswrong found problems');

if (problems.length > 0) {
  console.error(`\ncheck-pack: ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exitCode = 1;
} else {
  console.log('\ncheck-pack: ok');
}
