import assert from 'node:assert/strict';
import { test } from 'node:test';
import { constantWithWarmup, cosineWithWarmup, linearWithWarmup } from '../src/nn/index.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12, `${a} vs ${b}`);

test('constantWithWarmup ramps linearly, then holds', () => {
  const opts = { lr: 1e-3, warmupSteps: 10 };
  close(constantWithWarmup(0, opts), 0);
  close(constantWithWarmup(5, opts), 5e-4);
  close(constantWithWarmup(9, opts), 9e-4);
  close(constantWithWarmup(10, opts), 1e-3);
  close(constantWithWarmup(1000, opts), 1e-3);
  close(constantWithWarmup(0, { lr: 2, warmupSteps: 0 }), 2);
});

test('linearWithWarmup ramps up, then down to 0 at totalSteps', () => {
  const opts = { lr: 2, warmupSteps: 10, totalSteps: 110 };
  close(linearWithWarmup(0, opts), 0);
  close(linearWithWarmup(4, opts), 0.8);
  close(linearWithWarmup(10, opts), 2);
  close(linearWithWarmup(35, opts), 1.5);
  close(linearWithWarmup(60, opts), 1);
  close(linearWithWarmup(110, opts), 0);
  close(linearWithWarmup(500, opts), 0);
});

test('cosineWithWarmup follows a half cosine to minLr', () => {
  const opts = { lr: 1, warmupSteps: 10, totalSteps: 110 };
  close(cosineWithWarmup(0, opts), 0);
  close(cosineWithWarmup(5, opts), 0.5);
  close(cosineWithWarmup(10, opts), 1);
  close(cosineWithWarmup(35, opts), 0.5 + Math.SQRT1_2 / 2); // progress 1/4: (1 + cos π/4) / 2
  close(cosineWithWarmup(60, opts), 0.5);
  close(cosineWithWarmup(85, opts), 0.5 - Math.SQRT1_2 / 2);
  close(cosineWithWarmup(110, opts), 0);
  close(cosineWithWarmup(300, opts), 0);
  const floor = { ...opts, lr: 2, minLr: 0.2 };
  close(cosineWithWarmup(5, floor), 1);
  close(cosineWithWarmup(60, floor), 1.1); // halfway between 2 and 0.2
  close(cosineWithWarmup(110, floor), 0.2);
  close(cosineWithWarmup(1000, floor), 0.2);
});

test('schedules reject bad steps and options', () => {
  assert.throws(() => constantWithWarmup(-1, { lr: 1, warmupSteps: 2 }), /constantWithWarmup: step must be/);
  assert.throws(() => linearWithWarmup(0, { lr: 1, warmupSteps: 5, totalSteps: 4 }), /linearWithWarmup: totalSteps/);
  assert.throws(() => cosineWithWarmup(1.5, { lr: 1, warmupSteps: 0, totalSteps: 4 }), /cosineWithWarmup: step/);
  assert.throws(
    () => cosineWithWarmup(1, { lr: 1, warmupSteps: 0, totalSteps: 4, minLr: 2 }),
    /cosineWithWarmup: minLr must be in/,
  );
});
