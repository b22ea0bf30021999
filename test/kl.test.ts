import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdaptiveKLController, FixedKLController, klPerToken, makeKLController } from '../src/rlhf/kl.js';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

test('k1 and k3 per-token KL estimates match hand values', () => {
  const logp = [-1, -2, -0.3];
  const ref = [-1.5, -1, -0.3];
  assert.deepEqual(klPerToken(logp, ref, 'k1'), [0.5, -1, 0]);
  const k3 = klPerToken(logp, ref, 'k3');
  // log r = ref − logp = −0.5, 1, 0; k3 = e^{log r} − 1 − log r
  close(k3[0], Math.exp(-0.5) - 1 + 0.5);
  close(k3[1], Math.E - 2);
  close(k3[2], 0);
  assert.ok(k3.every((k) => k >= 0));
  assert.throws(() => klPerToken([0], [0, 1], 'k1'), /klPerToken: 1 policy log-probs but 2/);
});

test('the adaptive controller raises β above the target KL, lowers it below, with the error clipped to ±0.2', () => {
  const c = new AdaptiveKLController(0.1, 6, 10000);
  c.update(6.6, 100); // error 0.1
  close(c.value, 0.1 * (1 + (0.1 * 100) / 10000));
  const before = c.value;
  c.update(60, 100); // error 9 → clipped to 0.2
  close(c.value, before * (1 + (0.2 * 100) / 10000));
  const high = c.value;
  c.update(0, 100); // error −1 → clipped to −0.2
  close(c.value, high * (1 - (0.2 * 100) / 10000));
  const v = c.value;
  c.update(6, 100);
  close(c.value, v);
  // Repeated feedback: rises steadily above target, falls below.
  const up = new AdaptiveKLController(0.05, 2, 10);
  for (let i = 0; i < 5; i++) up.update(10, 1);
  close(up.value, 0.05 * 1.02 ** 5);
  const down = new AdaptiveKLController(0.05, 2, 10);
  for (let i = 0; i < 5; i++) down.update(0.5, 1);
  close(down.value, 0.05 * 0.98 ** 5);
  assert.throws(() => new AdaptiveKLController(0.1, 0, 10), /target \(0\)/);
});

test('fixed controller, state round trips and the factory', () => {
  const f = new FixedKLController(0.02);
  f.update();
  assert.equal(f.value, 0.02);
  const a = makeKLController({ klCoef: 0.3, adaptiveKl: true, targetKl: 1, klHorizon: 5 });
  assert.ok(a instanceof AdaptiveKLController);
  a.update(5, 2);
  const b = makeKLController({ klCoef: 0.3, adaptiveKl: true, targetKl: 1, klHorizon: 5 });
  b.setState(a.getState());
  assert.equal(b.value, a.value);
  assert.ok(
    makeKLController({ klCoef: 0.3, adaptiveKl: false, targetKl: 1, klHorizon: 5 }) instanceof FixedKLController,
  );
  assert.throws(() => f.setState(a.getState()), /cannot restore .* into a fixed controller/);
});
