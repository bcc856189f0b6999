// Code through esbuild (TypeScript 6 only type-checks), types bundled by rollup-plugin-dts.
import esbuild from 'rollup-plugin-esbuild';
import { dts } from 'rollup-plugin-dts';

const external = (id) => id === 'rxjs' || id.startsWith('rxjs/');

export default [
  {
    input: 'index.ts',
    external,
    plugins: [esbuild({ target: 'es2022', tsconfig: 'tsconfig.build.json' })],
    output: [
      { file: 'dist/index.js', format: 'es', sourcemap: true },
      { file: 'dist/index.cjs', format: 'cjs', sourcemap: true, exports: 'named' },
    ],
  },
  {
    input: 'index.ts',
    external,
    plugins: [dts({ tsconfig: 'tsconfig.build.json' })],
    output: { file: 'dist/index.d.ts', format: 'es' },
  },
];
