/* global setTimeout, clearTimeout */
/**
 * The browser check (`npm run test:browser`, after `npm run build`).
 *
 * 1. Static: `dist/index.js` (the rollup ESM bundle) imports nothing but `rxjs`: no `node:`
 *    specifier, no bare Node built-in, no `require(...)` of one.
 * 2. Dynamic: the bundle is served by a tiny `node:http` server on 127.0.0.1 (port 0) to a page
 *    in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core), which runs
 *    browser/scenario.js: a stalled stream is reclaimed, a healthy one survives, the books
 *    come back to 0. The page reports its checks; this script prints them and exits non-zero
 *    on any failure, page error, or timeout.
 *
 * How rxjs reaches the page: rxjs is external in the bundle, so the page needs it too. Its ESM
 * builds (dist/esm, dist/esm5) use extensionless relative specifiers ('./internal/Observable')
 * and import `tslib`, which a browser cannot resolve without a bundler or a resolving server.
 * The UMD bundle is one self-contained file; the page loads it as a classic script (it sets
 * `globalThis.rxjs`) and an import map points `rxjs` at /rxjs-shim.js, an ES module generated
 * here that re-exports every name rxjs exports on Node from that global.
 *
 * Without Chromium: fails when `CI` is set, otherwise prints "skipped" and exits 0.
 * Every Chromium process this script starts is gone when it exits (checked through /proc).
 */
import { readFile, readdir } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { builtinModules } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHROMIUM = '/usr/bin/chromium';
// The flags of the brief. Debian's Chromium also starts chrome_crashpad_handler daemons
// (re-parented to init, outside the browser's process group); they exit once the browser has
// gone, which the check at the end waits for. (--disable-crashpad-for-testing would avoid
// them, but with it this Chromium never finishes loading a page.)
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];const DEADLINE_MS = 40_000;

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const distDir = join(root, 'dist');
const bundlePath = join(distDir, 'index.js');
const rxjsUmdPath = join(root, 'node_modules', 'rxjs', 'dist', 'bundles', 'rxjs.umd.min.js');

let failed = false;
function fail(message) {
  failed = true;
  console.error(`FAIL ${message}`);
}

// ---------------------------------------------------------------------------------------
// 1. Static check of the bundle

/**
 * The package ships one module per source file: from dist/index.js, follow the relative
 * imports (every one must stay inside dist/) and check each module reached.
 */
async function staticCheckGraph(entry) {
  const seen = new Set([entry]);
  const code = [];
  for (const file of seen) {
    const text = await readFile(file, 'utf8');
    code.push(text);
    for (const m of text.matchAll(/\b(?:import|export)\s[^'";]*?\bfrom\s*(['"])(\.{1,2}\/[^'"]+)\1|\bimport\s*(['"])(\.{1,2}\/[^'"]+)\3/g)) {
      const target = join(dirname(file), m[2] ?? m[4]);
      if (!target.startsWith(distDir + sep)) fail(`${file.slice(root.length + 1)} imports ${m[2] ?? m[4]}, outside dist/`);
      else seen.add(target);
    }
  }
  console.log(`ok   graph: dist/index.js reaches ${seen.size} modules of dist/`);
  staticCheck(code.join('\n'));
}

function staticCheck(code) {
  const builtins = new Set(builtinModules);
  const isBuiltin = (spec) => spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]);
  const patterns = [
    ['import', /\b(?:import|export)\s[^'";]*?\bfrom\s*(['"])([^'"]+)\1/g],
    ['side-effect import', /\bimport\s*(['"])([^'"]+)\1/g],
    ['dynamic import', /\bimport\s*\(\s*(['"`])([^'"`]+)\1\s*\)/g],
    ['require', /\brequire\s*\(\s*(['"`])([^'"`]+)\1\s*\)/g],
  ];
  const specifiers = [];
  for (const [how, re] of patterns) {
    for (const m of code.matchAll(re)) specifiers.push({ how, spec: m[2] });
  }
  const isInternal = (spec) => spec.startsWith('./') || spec.startsWith('../');
  const offenders = specifiers.filter(
    ({ how, spec }) => isBuiltin(spec) || (how !== 'require' && spec !== 'rxjs' && !spec.startsWith('rxjs/') && !isInternal(spec)),
  );
  if (/\bcreateRequire\b/.test(code)) offenders.push({ how: 'createRequire', spec: 'createRequire' });
  const imports = [...new Set(specifiers.filter(({ spec }) => !isInternal(spec)).map(({ how, spec }) => `${how} ${spec}`))];
  if (offenders.length > 0) {
    fail(`dist/index.js and its modules reach outside rxjs: ${offenders.map(({ how, spec }) => `${how} '${spec}'`).join(', ')}`);
  } else if (!imports.includes("import rxjs")) {
    fail('dist/index.js does not import rxjs: is it the rollup ESM bundle?');
  } else {
    console.log(`ok   static: dist/index.js and its modules import only ${imports.join(', ')} (no Node built-in, no require)`);
  }
}

// ---------------------------------------------------------------------------------------
// 2. The page

async function rxjsShim() {
  const names = Object.keys(await import('rxjs')).filter((name) => name !== 'default');
  const lines = [
    '// Generated by browser/run.mjs: the rxjs UMD global as an ES module.',
    'const rx = globalThis.rxjs;',
    "if (!rx) throw new Error('the rxjs UMD bundle did not load');",
    `for (const name of ${JSON.stringify(names)}) if (!(name in rx)) throw new Error('rxjs UMD lacks ' + name);`,
    ...names.map((name) => `export const ${name} = rx.${name};`),
  ];
  return lines.join('\n');
}

async function startServer() {
  const shim = await rxjsShim();
  const routes = new Map([
    ['/', [join(here, 'page.html'), 'text/html']],
    ['/scenario.js', [join(here, 'scenario.js'), 'text/javascript']],
    ['/rxjs.umd.min.js', [rxjsUmdPath, 'text/javascript']],
  ]);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const send = (status, type, body) => {
      res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path === '/rxjs-shim.js') return send(200, 'text/javascript', shim);
    if (path === '/favicon.ico') return send(204, 'text/plain', '');
    // Every ESM module of dist/ and its source map (the package is one module per source file).
    const inDist = /^\/dist\/[\w/.-]+\.js(\.map)?$/.test(path) && !path.includes('..');
    const route = inDist ? [join(root, path), path.endsWith('.map') ? 'application/json' : 'text/javascript'] : routes.get(path);
    if (route === undefined) return send(404, 'text/plain', 'not found');
    readFile(route[0]).then(
      (body) => send(200, route[1], body),
      (err) => send(500, 'text/plain', String(err)),
    );
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

/** Every live (not zombie) process: pid → { name, parent } (Linux /proc; empty elsewhere). */
async function processes() {
  const table = new Map();
  if (!existsSync('/proc/self/stat')) return table;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      if (state !== 'Z') table.set(Number(entry), { name: stat.slice(stat.indexOf('(') + 1, close), parent: Number(ppid) });
    } catch {
      // the process ended while we looked
    }
  }
  return table;
}

/**
 * Chromium processes this run left behind: live descendants of this process, and Chromium
 * processes that did not exist before the launch and were re-parented to init (daemons).
 */
async function leftBehind(before) {
  const table = await processes();
  const found = [];
  for (const [pid, { name, parent }] of table) {
    if (!/chrom/i.test(name)) continue;
    let ours = parent === 1 && !before.has(pid);
    for (let p = parent; !ours && p !== undefined && p > 1; p = table.get(p)?.parent) ours = p === process.pid;
    if (ours) found.push(`${pid} (${name})`);
  }
  return found;
}

async function runPage() {
  const { chromium } = await import('playwright-core');
  const before = new Set((await processes()).keys());
  const server = await startServer();
  const { port } = server.address();
  let browser;
  const timer = setTimeout(() => {
    fail(`the browser check did not finish within ${DEADLINE_MS / 1000} s`);
    void browser?.close();
    server.close();
  }, DEADLINE_MS);
  try {
    const started = Date.now();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(String(err.stack ?? err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(`console.error: ${msg.text()}`);
    });
    page.on('requestfailed', (req) => pageErrors.push(`request failed: ${req.url()}`));
    page.on('response', (res) => {
      if (res.status() >= 400 && !res.url().endsWith('/favicon.ico')) pageErrors.push(`HTTP ${res.status()} for ${res.url()}`);
    });
    await page.goto(`http://127.0.0.1:${port}/`, { timeout: 15_000 });
    await page.waitForFunction(() => globalThis.__memquotaResult !== undefined, undefined, { timeout: 20_000 });
    const result = await page.evaluate(() => globalThis.__memquotaResult);
    const version = browser.version();
    await browser.close();
    browser = undefined;

    console.log(`ok   page: Chromium ${version} loaded dist/index.js from http://127.0.0.1:${port}/ in ${Date.now() - started} ms`);
    for (const c of result.checks) {
      if (c.ok) console.log(`ok   ${c.name}`);
      else fail(`${c.name}${c.detail === undefined ? '' : ` (got ${c.detail})`}`);
    }
    if (result.error !== undefined) fail(`the scenario threw: ${result.error}`);
    if (result.checks.length === 0) fail('the scenario ran no check');
    if (!result.ok && !failed) fail('the scenario reported failure');
    for (const e of pageErrors) fail(`page: ${e}`);
    if (result.figures) console.log(`     figures: ${JSON.stringify(result.figures)}`);
  } finally {
    clearTimeout(timer);
    if (browser !== undefined) await browser.close().catch(() => undefined);
    server.close();
  }
  // browser.close() waits for the browser process; its children may take a moment longer.
  let left = await leftBehind(before);
  let waited = 0;
  for (; waited < 3000 && left.length > 0; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    left = await leftBehind(before);
  }
  if (left.length > 0) fail(`Chromium processes left behind: ${left.join(', ')}`);
  else console.log(`ok   no Chromium process left behind (${waited} ms after close)`);
}

// ---------------------------------------------------------------------------------------

async function main() {
  if (!existsSync(bundlePath)) {
    fail('dist/index.js is missing: run `npm run build` first');
    return;
  }
  await staticCheckGraph(bundlePath);
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) fail(`${CHROMIUM} is missing (CI must install it: apt-get install chromium)`);
    else console.log('skipped: chromium not installed (apt-get install chromium)');
    return;
  }
  await runPage();
}

main().then(
  () => {
    console.log(failed ? 'browser check: FAILED' : 'browser check: passed');
    process.exitCode = failed ? 1 : 0;
  },
  (err) => {
    console.error(err);
    console.log('browser check: FAILED');
    process.exitCode = 1;
  },
);
