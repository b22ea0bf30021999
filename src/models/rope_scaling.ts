// RoPE settings of a Llama-family config.json: the base (rope_theta) and an optional frequency scaling, read from
// transformers 4 fields ("rope_theta", "rope_scaling") or transformers 5's "rope_parameters".
import { ropeFrequencies } from '../tensor/index.js';

/** Frequency scalings that stretch a model's context: "linear" divides every frequency, Llama 3's only the low ones. */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface RopeSettings {
  theta: number;
  scaling: RopeScaling | null;
}

type Json = Record<string, unknown>;

export function ropeFromHF(json: Json, source: string): RopeSettings {
  const params = json.rope_parameters as Json | null | undefined;
  const field = params ? 'rope_parameters' : 'rope_scaling';
  const scaling = (params ?? json.rope_scaling) as Json | null | undefined;
  const positive = (obj: Json, key: string, name: string): number => {
    const v = obj[key];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
      throw new Error(`${source}: field "${name}" must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const theta =
    params && params.rope_theta !== undefined
      ? positive(params, 'rope_theta', 'rope_parameters.rope_theta')
      : json.rope_theta === undefined
        ? 10000
        : positive(json, 'rope_theta', 'rope_theta');
  const type = scaling ? (scaling.rope_type ?? scaling.type ?? 'default') : 'default';
  const at = (key: string) => positive(scaling!, key, `${field}.${key}`);
  if (type === 'default') return { theta, scaling: null };
  if (type === 'linear') return { theta, scaling: { type, factor: at('factor') } };
  if (type === 'llama3') {
    const s: RopeScaling = {
      type,
      factor: at('factor'),
      lowFreqFactor: at('low_freq_factor'),
      highFreqFactor: at('high_freq_factor'),
      originalMaxPositions: at('original_max_position_embeddings'),
    };
    if (s.highFreqFactor <= s.lowFreqFactor)
      throw new Error(`${source}: field "${field}.high_freq_factor" must exceed "low_freq_factor"`);
    return { theta, scaling: s };
  }
  throw new Error(
    `${source}: field "${field}" asks for RoPE type ${JSON.stringify(type)}, which is not supported yet ` +
      '(default, linear and llama3 are)',
  );
}

/** The config.json fields for these settings (transformers 4 names, which transformers 5 also reads). */
export function ropeToHF(rope: RopeSettings): Json {
  const s = rope.scaling;
  if (!s) return { rope_theta: rope.theta };
  const scaling: Json =
    s.type === 'linear'
      ? { rope_type: 'linear', factor: s.factor }
      : {
          rope_type: 'llama3',
          factor: s.factor,
          low_freq_factor: s.lowFreqFactor,
          high_freq_factor: s.highFreqFactor,
          original_max_position_embeddings: s.originalMaxPositions,
        };
  return { rope_theta: rope.theta, rope_scaling: scaling };
}

/** The rotation frequencies of one head (headDim / 2 of them), scaled as configured. */
export function ropeInvFreq(rope: RopeSettings, headDim: number): Float32Array {
  const base = ropeFrequencies(rope.theta, headDim);
  const s = rope.scaling;
  if (!s) return base;
  if (s.type === 'linear') return base.map((f) => f / s.factor);
  // Llama 3: wavelengths shorter than original/highFreqFactor keep their frequency, longer than
  // original/lowFreqFactor are divided by factor, and the band between blends the two smoothly.
  const longest = s.originalMaxPositions / s.lowFreqFactor;
  const shortest = s.originalMaxPositions / s.highFreqFactor;
  return base.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < shortest) return f;
    if (wavelength > longest) return f / s.factor;
    const smooth = (s.originalMaxPositions / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}
