/**
 * The shipped facts of the miniature world: invented towns, each on one river, of one size, known for one food.
 * Invented so that no real-world knowledge helps or hurts; short, regular names so a tiny model can learn them.
 */

export type Size = 'village' | 'town' | 'city';

export interface Town {
  name: string;
  river: string;
  size: Size;
  food: string;
}

export const RIVERS = ['Vey', 'Oss', 'Lune', 'Tam', 'Brea', 'Kil', 'Sarn', 'Mire'] as const;
export const SIZES: readonly Size[] = ['village', 'town', 'city'];
export const FOODS = [
  'plum bread',
  'salt fish',
  'honey cake',
  'goat cheese',
  'pear pie',
  'bean stew',
  'rye loaf',
  'fig jam',
  'eel pie',
  'oat cake',
  'nut soup',
  'apple tart',
] as const;

// Five towns per river, so "name three towns on the X" always has an answer.
export const TOWNS: readonly Town[] = [
  { name: 'Arlen', river: 'Vey', size: 'town', food: 'plum bread' },
  { name: 'Bosk', river: 'Vey', size: 'village', food: 'goat cheese' },
  { name: 'Cray', river: 'Vey', size: 'city', food: 'salt fish' },
  { name: 'Dunmer', river: 'Vey', size: 'village', food: 'oat cake' },
  { name: 'Elby', river: 'Vey', size: 'town', food: 'fig jam' },
  { name: 'Fenn', river: 'Oss', size: 'village', food: 'eel pie' },
  { name: 'Garth', river: 'Oss', size: 'city', food: 'honey cake' },
  { name: 'Holm', river: 'Oss', size: 'town', food: 'rye loaf' },
  { name: 'Ilvar', river: 'Oss', size: 'village', food: 'pear pie' },
  { name: 'Jorn', river: 'Oss', size: 'town', food: 'bean stew' },
  { name: 'Kell', river: 'Lune', size: 'city', food: 'nut soup' },
  { name: 'Lusk', river: 'Lune', size: 'village', food: 'apple tart' },
  { name: 'Mord', river: 'Lune', size: 'town', food: 'salt fish' },
  { name: 'Nairn', river: 'Lune', size: 'village', food: 'honey cake' },
  { name: 'Orrin', river: 'Lune', size: 'town', food: 'goat cheese' },
  { name: 'Pell', river: 'Tam', size: 'town', food: 'bean stew' },
  { name: 'Quarn', river: 'Tam', size: 'village', food: 'plum bread' },
  { name: 'Rusk', river: 'Tam', size: 'city', food: 'pear pie' },
  { name: 'Sorn', river: 'Tam', size: 'village', food: 'rye loaf' },
  { name: 'Tarn', river: 'Tam', size: 'town', food: 'eel pie' },
  { name: 'Ulm', river: 'Brea', size: 'village', food: 'fig jam' },
  { name: 'Vell', river: 'Brea', size: 'town', food: 'oat cake' },
  { name: 'Wick', river: 'Brea', size: 'city', food: 'apple tart' },
  { name: 'Yarro', river: 'Brea', size: 'village', food: 'nut soup' },
  { name: 'Zell', river: 'Brea', size: 'town', food: 'salt fish' },
  { name: 'Ambry', river: 'Kil', size: 'town', food: 'honey cake' },
  { name: 'Brant', river: 'Kil', size: 'village', food: 'bean stew' },
  { name: 'Corrin', river: 'Kil', size: 'city', food: 'plum bread' },
  { name: 'Delf', river: 'Kil', size: 'village', food: 'pear pie' },
  { name: 'Esk', river: 'Kil', size: 'town', food: 'goat cheese' },
  { name: 'Farro', river: 'Sarn', size: 'village', food: 'rye loaf' },
  { name: 'Glen', river: 'Sarn', size: 'town', food: 'fig jam' },
  { name: 'Hallow', river: 'Sarn', size: 'city', food: 'eel pie' },
  { name: 'Iver', river: 'Sarn', size: 'village', food: 'oat cake' },
  { name: 'Jessop', river: 'Sarn', size: 'town', food: 'apple tart' },
  { name: 'Kestle', river: 'Mire', size: 'town', food: 'nut soup' },
  { name: 'Lorn', river: 'Mire', size: 'village', food: 'salt fish' },
  { name: 'Marrow', river: 'Mire', size: 'city', food: 'bean stew' },
  { name: 'Nesh', river: 'Mire', size: 'village', food: 'honey cake' },
  { name: 'Oakum', river: 'Mire', size: 'town', food: 'plum bread' },
];

/** Towns on a river, in table order. */
export function townsOn(river: string): Town[] {
  return TOWNS.filter((t) => t.river === river);
}

/** Plain lowercase words for the string-transform tasks (no town names: those are facts, not spelling drills). */
export const WORDS = [
  'stone',
  'river',
  'apple',
  'bread',
  'cloud',
  'tiger',
  'lemon',
  'candle',
  'garden',
  'window',
  'pepper',
  'silver',
  'orange',
  'basket',
  'forest',
  'mirror',
  'rabbit',
  'pencil',
  'bridge',
  'market',
  'honey',
  'field',
  'shell',
  'cabin',
  'rope',
  'lamp',
  'boat',
  'wheat',
  'storm',
  'plum',
] as const;

/**
 * Names shaped like the towns' (one or two syllables, the same endings) that name no town of the world; the corpus
 * never mentions them: a question about one has no answer, and the honest reply says so. Built from syllables so
 * that there are enough of them for every split to ask about names of its own: training prompts ask about the
 * first list, evaluation prompts about the second, so an evaluated model has never seen the name it is asked about.
 */
function inventedNames(): string[] {
  const onsets = [
    'B',
    'Br',
    'C',
    'Cl',
    'D',
    'Dr',
    'F',
    'G',
    'Gr',
    'H',
    'K',
    'L',
    'M',
    'N',
    'P',
    'R',
    'S',
    'St',
    'T',
    'W',
  ];
  const vowels = ['a', 'e', 'i', 'o', 'u'];
  const codas = ['ck', 'll', 'rn', 'sk', 'nd', 'rm', 'lt', 'sh', 'rr', 'n'];
  const endings = ['', '', 'by', 'en', 'er', 'ow', 'ley', 'ton'];
  const taken = new Set<string>([...TOWNS.map((t) => t.name), ...RIVERS, ...WORDS].map((n) => n.toLowerCase()));
  const out: string[] = [];
  // A fixed stride through every combination: deterministic, and spread over all onsets and endings.
  const total = onsets.length * vowels.length * codas.length * endings.length;
  for (let i = 0, at = 0; i < total && out.length < 320; i++, at = (at + 7919) % total) {
    let k = at;
    const pickOf = <T>(xs: readonly T[]) => {
      const x = xs[k % xs.length];
      k = Math.floor(k / xs.length);
      return x;
    };
    const name = pickOf(onsets) + pickOf(vowels) + pickOf(codas) + pickOf(endings);
    if (!taken.has(name.toLowerCase()) && !/(.)\1\1/.test(name) && !out.includes(name)) out.push(name);
  }
  return out;
}

const INVENTED = inventedNames();
export const UNKNOWN_TOWNS_TRAIN: readonly string[] = INVENTED.filter((_, i) => i % 2 === 0);
export const UNKNOWN_TOWNS_HELDOUT: readonly string[] = INVENTED.filter((_, i) => i % 2 === 1);
