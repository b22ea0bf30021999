import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gae, whiten } from '../src/rlhf/gae.js';

const closeAll = (got: number[], want: number[], tol = 1e-9) => {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    assert.ok(Math.abs(g - want[i]) < tol, `[${i}] ${g} vs ${want[i]}`);
  });
};

const rewards = [1, 0, 2];
const values = [0.5, 1, 0.5];

test('GAE with γ = 0.9, λ = 0.8 matches a hand computation', () => {
  // δ2 = 2 − 0.5 = 1.5; δ1 = 0 + 0.9·0.5 − 1 = −0.55; δ0 = 1 + 0.9·1 − 0.5 = 1.4; γλ = 0.72
  const { advantages, returns } = gae(rewards, values, 0.9, 0.8);
  closeAll(advantages, [1.4 + 0.72 * (-0.55 + 0.72 * 1.5), -0.55 + 0.72 * 1.5, 1.5]);
  closeAll(returns, [1.4 + 0.72 * 0.53 + 0.5, 0.53 + 1, 2]);
});

test('GAE with γ = 1 (the paper): λ = 1 gives Monte Carlo returns, λ = 0.95 and λ = 0 by hand', () => {
  const mc = gae(rewards, values, 1, 1);
  closeAll(mc.returns, [3, 2, 2]);
  closeAll(mc.advantages, [2.5, 1, 1.5]);
  // δ = [1.5, −0.5, 1.5]; A1 = −0.5 + 0.95·1.5 = 0.925; A0 = 1.5 + 0.95·0.925
  closeAll(gae(rewards, values, 1, 0.95).advantages, [1.5 + 0.95 * 0.925, 0.925, 1.5]);
  closeAll(gae(rewards, values, 1, 0).advantages, [1.5, -0.5, 1.5]);
  assert.throws(() => gae([1], [1, 2], 1, 1), /gae: 1 rewards but 2 values/);
});

test('whitening over all rows: zero mean, unit variance, or the mean kept', () => {
  const s = 1 / Math.sqrt(2 / 3 + 1e-8); // mean 2, population variance 2/3
  const w = whiten([[1, 2], [3]]);
  closeAll(w[0], [-s, 0]);
  closeAll(w[1], [s]);
  const kept = whiten([[1, 2], [3]], false);
  closeAll(kept[0], [2 - s, 2]);
  closeAll(kept[1], [2 + s]);
});
