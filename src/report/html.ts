// A run's report as one self-contained HTML page (inline SVG charts and CSS, no script, nothing fetched), with a
// PNG of every chart beside it. Every piece of text from the run is HTML-escaped.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { intervalBarChart, lineChart, type Series, svgToPng } from './charts.js';

export interface ReportWinRate {
  model: string;
  winRate: number;
  lo: number;
  hi: number;
  wins: number;
  ties: number;
  losses: number;
  n: number;
}

export interface ReportData {
  title: string;
  subtitle: string;
  /** The run's final JSON line. */
  summary: Record<string, unknown>;
  /**
   * Win rate of each model against the baseline with its 95 % interval, per held-out labeler pool, on prompts in
   * phrasings no training stage saw and on training phrasings; the first pool is the headline (the least pleased).
   */
  winRates: { pool: string; heldoutPhrasing: ReportWinRate[]; trainPhrasing: ReportWinRate[] }[];
  /** Reward-model score against √KL from the reference, per PPO run. */
  rewardKl: Series[];
  losses: { title: string; series: Series[] }[];
  labelers: {
    agreement: number;
    agreementSd: number;
    heldoutAgreement: number;
    heldoutAgreementSd: number;
    rmHeldoutAccuracy: number;
    /** Reward-model accuracy on probe pairs whose better side is known by construction. */
    probes: { kind: string; what: string; accuracy: number; n: number }[];
    /** The reward model on the held-out labelers' own pairs, by what the pair pits against each other. */
    pairKinds: { what: string; rm: number; labelers: number; share: number; n: number }[];
  };
  /** Held-out pretraining-corpus loss per model and its change from the base model and from SFT. */
  tax: { model: string; loss: number; vsBase: number; vsSft: number }[];
  /** Objective checks of the answers (the world's checkers, no labeler). */
  stats: {
    model: string;
    correct: number;
    correctTrainPhrasing: number;
    correctHeldoutPhrasing: number;
    /** Held-out phrasings: correct minus SFT's on the same prompts, with its 95 % interval (null for SFT itself). */
    heldoutVsSft: { gain: number; lo: number; hi: number } | null;
    constraintsMet: number;
    /** On prompts about towns that do not exist: says so / invents an answer. */
    abstain: number;
    hallucinate: number;
    /** On answerable prompts: says it does not know. */
    overAbstain: number;
    habits: number;
    meanChars: number;
  }[];
  samples: { prompt: string; answers: { model: string; text: string; likert: number; correct: boolean }[] }[];
  stages: { name: string; seconds: number; cached: boolean; summary: string }[];
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
/** A difference of shares in signed percentage points. */
const points = (x: number) => `${x < 0 ? '−' : '+'}${Math.abs(100 * x).toFixed(1)}`;
const num = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const signed = (x: number) => `${x >= 0 ? '+' : ''}${num(x)}`;

function table(head: string[], rows: string[][]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

// An answer cell keeps its line breaks (bullet lists) and shows an empty answer as such.
function answerCell(text: string): string {
  return text === '' ? '<em>(empty)</em>' : `<pre>${escapeHtml(text)}</pre>`;
}

const CSS = `
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
section { margin: 2em 0; } figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; max-width: 640px; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } pre { margin: 0; font-family: inherit; white-space: pre-wrap; }
.ok { color: #2a7a2a; } .bad { color: #b33; } code { background: #f4f4f4; padding: 1px 4px; }
`;

interface Figure {
  file: string;
  svg: string;
  caption: string;
}

function figureHtml(f: Figure): string {
  return `<figure>${f.svg}<figcaption>${escapeHtml(f.caption)} (<a href="${f.file}">PNG</a>)</figcaption></figure>`;
}

/** Writes index.html and one PNG per chart into dir; returns the files written. */
export function writeReport(dir: string, data: ReportData): string[] {
  mkdirSync(dir, { recursive: true });
  const winFigs: Figure[] = data.winRates.map((p, i) => ({
    file: i === 0 ? 'winrate.png' : `winrate_${p.pool}.png`,
    svg: intervalBarChart(
      `Win rate against SFT — held-out pool “${p.pool}”, held-out phrasings`,
      p.heldoutPhrasing.map((w) => ({ label: w.model, value: w.winRate, lo: w.lo, hi: w.hi })),
      { yName: 'win rate', reference: 0.5, percent: true },
    ),
    caption:
      `How often the held-out pool “${p.pool}” prefers each model’s answer to the SFT model’s, on prompts in phrasings ` +
      `no training stage saw; whiskers are 95 % Wilson intervals (the paper’s Figure 1 in miniature)` +
      (i === 0 ? '. This pool likes PPO-ptx least: the headline.' : '.'),
  }));
  const klFig: Figure = {
    file: 'reward_kl.png',
    svg: lineChart('Reward against √KL', data.rewardKl, { xName: '√KL(π ‖ π_SFT)', yName: 'RM score', scatter: true }),
    caption: 'Reward-model score of each PPO batch against the square root of its KL divergence from the SFT policy.',
  };
  const lossFigs: Figure[] = data.losses.map((l, i) => ({
    file: `loss_${i + 1}.png`,
    svg: lineChart(l.title, l.series, { xName: 'step', yName: 'loss' }),
    caption: `${l.title}: loss per step (from metrics.jsonl).`,
  }));
  const figures = [...winFigs, klFig, ...lossFigs];
  const files: string[] = [];
  for (const f of figures) {
    writeFileSync(join(dir, f.file), svgToPng(f.svg));
    files.push(join(dir, f.file));
  }

  const lab = data.labelers;
  const samples = data.samples
    .map((s) => {
      const cells = s.answers
        .map(
          (a) =>
            `<td>${answerCell(a.text)}</td><td class="${a.correct ? 'ok' : 'bad'}">${a.likert}${a.correct ? ' ✓' : ' ✗'}</td>`,
        )
        .join('');
      return `<tr><td>${escapeHtml(s.prompt)}</td>${cells}</tr>`;
    })
    .join('\n');
  const sampleHead = (data.samples[0]?.answers ?? [])
    .flatMap((a) => [`${a.model} answer`, 'score'])
    .map((h) => `<th>${escapeHtml(h)}</th>`)
    .join('');

  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(data.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head>
<body>
<h1>${escapeHtml(data.title)}</h1>
<p class="sub">${escapeHtml(data.subtitle)}</p>

<section id="summary"><h2>Did RLHF work?</h2>
${table(
  [
    'model',
    'held-out pool',
    'win rate vs SFT, held-out phrasings',
    '95 % interval',
    'training phrasings',
    '95 % interval',
  ],
  data.winRates.flatMap((p) =>
    p.heldoutPhrasing.map((w, i) => {
      const t = p.trainPhrasing[i];
      return [
        w.model,
        p.pool,
        pct(w.winRate),
        `${pct(w.lo)} – ${pct(w.hi)}`,
        pct(t.winRate),
        `${pct(t.lo)} – ${pct(t.hi)}`,
      ];
    }),
  ),
)}
<p>Final line of the run: <code>${escapeHtml(JSON.stringify(data.summary))}</code></p>
</section>

<section id="winrate"><h2>Win rate against SFT</h2>
${winFigs.map(figureHtml).join('\n')}
</section>

<section id="answers"><h2>What the answers are made of</h2>
${table(
  [
    'model',
    'correct',
    'training phrasings',
    'held-out phrasings',
    'held-out phrasings vs SFT (points, 95 % interval)',
    'format followed',
    'no such town: says so',
    'invents',
    'answerable: says it does not know',
    'writers’ habits',
    'mean length (chars)',
  ],
  data.stats.map((s) => [
    s.model,
    pct(s.correct),
    pct(s.correctTrainPhrasing),
    pct(s.correctHeldoutPhrasing),
    s.heldoutVsSft
      ? `${points(s.heldoutVsSft.gain)} (${points(s.heldoutVsSft.lo)} to ${points(s.heldoutVsSft.hi)})`
      : '—',
    pct(s.constraintsMet),
    pct(s.abstain),
    pct(s.hallucinate),
    pct(s.overAbstain),
    pct(s.habits),
    s.meanChars.toFixed(1),
  ]),
)}
<p>The world’s checkers, no labeler: right content; “no such town” rows are the prompts about towns that do not
exist (evaluation asks about names no training stage used), where the right answer says it does not know; habits are
the demonstration writers’ openers, hedges and padding. “vs SFT” is the difference from SFT on the same held-out
prompts with its paired 95 % interval (Newcombe’s): a gain whose interval holds 0 may be no more than which prompts
were drawn.</p>
</section>

<section id="labelers"><h2>Labelers and the reward model</h2>
${table(
  ['measure', 'value'],
  [
    ['agreement between training labelers (pairwise)', `${pct(lab.agreement)} ± ${pct(lab.agreementSd)}`],
    ['agreement between held-out labelers (pairwise)', `${pct(lab.heldoutAgreement)} ± ${pct(lab.heldoutAgreementSd)}`],
    ['reward model accuracy on held-out labelers’ rankings', pct(lab.rmHeldoutAccuracy)],
    ...lab.probes.map((p) => [`reward model: ${p.what} (${p.n} pairs)`, pct(p.accuracy)]),
  ],
)}
${table(
  ['held-out labelers’ pairs', 'share of pairs', 'reward model agrees with the labeler', 'two labelers agree'],
  lab.pairKinds.map((k) => [`${k.what} (${k.n})`, pct(k.share), pct(k.rm), pct(k.labelers)]),
)}
<p>The paper: labelers agree with each other about 73 % of the time, and the reward model predicts held-out
labelers’ preferences about as well. The probe pairs separate what the reward model learned: which of two answers in
the same style is right, which of two equally right answers carries a habit every pool dislikes, and whether
“I do not know” beats an invented answer about a town that does not exist. The second table splits the held-out
labelers’ own pairs by what the world’s checker says of the two answers: where one is right and the other wrong every
labeler picks the right one, so the reward model’s shortfall there is what separates it from a second labeler.</p>
</section>

<section id="reward-kl"><h2>Reward against √KL</h2>
${figureHtml(klFig)}
</section>

<section id="tax"><h2>Alignment tax</h2>
${table(
  ['model', 'held-out pretraining-corpus loss', 'change from base', 'change from SFT'],
  data.tax.map((t) => [t.model, num(t.loss), signed(t.vsBase), signed(t.vsSft)]),
)}
<p>As in the paper, the tax is measured against the pretrained base model: SFT’s change is its own forgetting,
and PPO-ptx mixes pretraining gradients into PPO to keep the loss near the base model’s.</p>
</section>

<section id="losses"><h2>Loss curves</h2>
${lossFigs.map(figureHtml).join('\n')}
</section>

<section id="samples"><h2>Samples (held-out prompts)</h2>
<p>Scores are one held-out labeler’s 1–7 ratings; ✓/✗ is the world’s checker.</p>
<table><thead><tr><th>prompt</th>${sampleHead}</tr></thead><tbody>
${samples}
</tbody></table>
</section>

<section id="stages"><h2>Stages</h2>
${table(
  ['stage', 'time', 'summary'],
  data.stages.map((s) => [s.name, s.cached ? 'cached' : `${s.seconds.toFixed(1)} s`, s.summary]),
)}
</section>
</body></html>
`;
  writeFileSync(join(dir, 'index.html'), html);
  files.push(join(dir, 'index.html'));
  return files;
}
