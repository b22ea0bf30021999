import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Module, ModuleList } from '../src/nn/index.js';
import { backward, matmul, Rng, randn, type Tensor, tensor, tidy, toBf16, zeros } from '../src/tensor/index.js';

class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(inFeatures: number, outFeatures: number, rng: Rng) {
    super();
    this.weight = this.registerParameter('weight', randn([outFeatures, inFeatures], rng, 0.1));
    this.bias = this.registerParameter('bias', zeros([outFeatures]));
  }
  forward(x: Tensor): Tensor {
    return matmul(x, this.weight, { transB: true });
  }
}

class Attention extends Module {
  readonly cAttn: Linear;
  readonly cProj: Linear;
  constructor(d: number, rng: Rng) {
    super();
    this.cAttn = this.registerModule('c_attn', new Linear(d, 3 * d, rng));
    this.cProj = this.registerModule('c_proj', new Linear(d, d, rng));
  }
}

class Block extends Module {
  readonly ln1: Tensor;
  readonly attn: Attention;
  constructor(d: number, rng: Rng) {
    super();
    this.ln1 = this.registerParameter('ln_1', randn([d], rng));
    this.attn = this.registerModule('attn', new Attention(d, rng));
  }
}

class Embedding extends Module {
  readonly weight: Tensor;
  constructor(n: number, d: number, rng: Rng) {
    super();
    this.weight = this.registerParameter('weight', randn([n, d], rng));
  }
}

// A GPT-shaped tree whose output head is tied to the token embedding.
class Toy extends Module {
  readonly wte: Embedding;
  readonly h: ModuleList<Block>;
  readonly lmHead: Module;
  constructor(seed: number, d = 4, layers = 2) {
    super();
    const rng = new Rng(seed);
    this.wte = this.registerModule('wte', new Embedding(5, d, rng));
    this.h = this.registerModule('h', new ModuleList(Array.from({ length: layers }, () => new Block(d, rng))));
    const head = new (class extends Module {})();
    head.registerParameter('weight', this.wte.weight);
    this.lmHead = this.registerModule('lm_head', head);
  }
}

const blockNames = (i: number) => [
  `h.${i}.ln_1`,
  `h.${i}.attn.c_attn.weight`,
  `h.${i}.attn.c_attn.bias`,
  `h.${i}.attn.c_proj.weight`,
  `h.${i}.attn.c_proj.bias`,
];

function snapshot(m: Module): Map<string, number[]> {
  return new Map(m.namedParameters().map(([k, t]) => [k, t.toArray()]));
}

test('namedParameters gives dotted paths in registration order, a tied weight once', () => {
  const m = new Toy(1);
  assert.deepEqual(
    m.namedParameters().map(([k]) => k),
    ['wte.weight', ...blockNames(0), ...blockNames(1)],
  );
  assert.equal(m.parameters().length, 11);
  assert.ok(m.parameters().every((t) => t.requiresGrad && t.kept));
  const perBlock = 4 + 12 * 4 + 12 + 4 * 4 + 4;
  assert.equal(m.numParameters(), 5 * 4 + 2 * perBlock);
  assert.deepEqual(
    m.namedModules().map(([k]) => k),
    [
      '',
      'wte',
      'h',
      'h.0',
      'h.0.attn',
      'h.0.attn.c_attn',
      'h.0.attn.c_proj',
      'h.1',
      'h.1.attn',
      'h.1.attn.c_attn',
      'h.1.attn.c_proj',
      'lm_head',
    ],
  );
  assert.deepEqual(
    m.namedChildren().map(([k]) => k),
    ['wte', 'h', 'lm_head'],
  );
});

test('the state dict lists a tied weight under every path', () => {
  const m = new Toy(1);
  const sd = m.stateDict();
  assert.deepEqual([...sd.keys()], ['wte.weight', ...blockNames(0), ...blockNames(1), 'lm_head.weight']);
  assert.equal(sd.get('lm_head.weight'), sd.get('wte.weight'));
});

test('ModuleList indexes and iterates its modules', () => {
  const m = new Toy(1, 4, 3);
  assert.equal(m.h.length, 3);
  assert.equal(m.h.at(-1), [...m.h][2]);
  assert.equal(m.h.at(0).attn.cAttn.weight, m.stateDict().get('h.0.attn.c_attn.weight'));
  assert.throws(() => m.h.at(3), /ModuleList.at: index 3 is out of range/);
});

test('parameters survive the tidy scope they were made in', () => {
  const m = tidy(() => new Toy(2));
  assert.ok(m.parameters().every((t) => !t.disposed));
});

test('train and eval set the mode on every descendant', () => {
  const m = new Toy(1);
  assert.ok(m.modules().every((x) => x.training));
  assert.equal(m.eval(), m);
  assert.ok(m.modules().every((x) => !x.training));
  m.h.at(1).train();
  assert.deepEqual(
    m.modules().map((x) => x.training),
    m.namedModules().map(([k]) => k.startsWith('h.1')),
  );
  m.train();
  assert.ok(m.modules().every((x) => x.training));
});

test('zeroGrad releases every gradient', () => {
  const m = new Toy(1);
  const lin = m.h.at(0).attn.cProj;
  const out = lin.forward(randn([3, 4], new Rng(9)));
  backward(out, randn([3, 4], new Rng(10)));
  const g = lin.weight.grad;
  assert.ok(g);
  m.zeroGrad();
  assert.equal(lin.weight.grad, null);
  assert.ok(g.disposed);
});

test('loadStateDict copies values in', () => {
  const a = new Toy(1);
  const b = new Toy(2);
  assert.notDeepEqual(snapshot(a), snapshot(b));
  const result = b.loadStateDict(a.stateDict());
  assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [] });
  assert.deepEqual(snapshot(b), snapshot(a));
  // copied, not shared
  assert.notEqual(b.wte.weight, a.wte.weight);
  a.wte.weight.f32[0] += 1;
  assert.notEqual(b.wte.weight.f32[0], a.wte.weight.f32[0]);
  // a Record works as well as a Map
  b.loadStateDict(Object.fromEntries(a.stateDict()));
  assert.equal(b.wte.weight.f32[0], a.wte.weight.f32[0]);
});

test('loadStateDict lists every problem and changes nothing', () => {
  const a = new Toy(1);
  const b = new Toy(2);
  const before = snapshot(b);
  const sd = a.stateDict();
  sd.delete('h.1.attn.c_proj.bias');
  sd.set('h.2.ln_1', zeros([4]));
  sd.set('h.0.attn.c_attn.weight', zeros([4, 12]));
  sd.set('h.1.ln_1', toBf16(a.h.at(1).ln1));
  assert.throws(
    () => b.loadStateDict(sd),
    (err: Error) => {
      assert.match(err.message, /^loadStateDict: 4 problem\(s\), nothing was loaded/);
      assert.match(err.message, /missing key h\.1\.attn\.c_proj\.bias/);
      assert.match(err.message, /unexpected key h\.2\.ln_1/);
      assert.match(
        err.message,
        /h\.0\.attn\.c_attn\.weight: shape \[4, 12\] in the state dict, \[12, 4\] in the model/,
      );
      assert.match(err.message, /h\.1\.ln_1: dtype bf16 in the state dict, f32 in the model/);
      return true;
    },
  );
  assert.deepEqual(snapshot(b), before);
});

test('non-strict loading reports missing and unexpected keys but still rejects bad shapes', () => {
  const a = new Toy(1);
  const b = new Toy(2);
  const sd = a.stateDict();
  sd.delete('lm_head.weight');
  sd.delete('h.0.ln_1');
  sd.set('extra', zeros([1]));
  const result = b.loadStateDict(sd, { strict: false });
  assert.deepEqual(result, { missingKeys: ['h.0.ln_1', 'lm_head.weight'], unexpectedKeys: ['extra'] });
  assert.deepEqual(b.wte.weight.toArray(), a.wte.weight.toArray());
  assert.notDeepEqual(b.h.at(0).ln1.toArray(), a.h.at(0).ln1.toArray());
  sd.set('wte.weight', zeros([4, 5]));
  assert.throws(() => b.loadStateDict(sd, { strict: false }), /loadStateDict: 1 problem\(s\).*\n.*wte\.weight: shape/);
});

test('registration rejects bad and repeated names and cycles', () => {
  const m = new Toy(1);
  assert.throws(() => m.registerParameter('wte', zeros([1])), /registerParameter: name "wte" is already registered/);
  assert.throws(() => m.registerParameter('a.b', zeros([1])), /registerParameter: name "a.b" must be non-empty/);
  assert.throws(() => m.registerModule('', new Toy(2)), /registerModule: name "" must be non-empty/);
  assert.throws(() => m.h.at(0).registerModule('loop', m), /registerModule: loop: a module cannot contain itself/);
  assert.throws(() => m.registerParameter('ids', tensor([1, 2], [2], 'i32')), /parameter: parameters are f32/);
});
