/**
 * Rank K responses best→worst: drag a card, or focus it and press Alt+↑/↓ (↑/↓ alone moves focus, 1–7 scores it
 * when Likert scores are asked for, = ties it with the card above). Each response keeps its letter (A, B, C, ...)
 * wherever it moves; tied cards share a place.
 */
import { useEffect, useRef, useState } from 'react';
import type { RankingBody } from '../../src/server/responses.js';
import type { SubmitBody } from '../../src/server/schemas.js';

/** The paper's per-response flags, as the API's submit schema names them. */
export type Flag = keyof NonNullable<SubmitBody['flags']>;

export const FLAG_LABELS: Record<Flag, string> = {
  fails_to_follow_instruction: 'Fails to follow the instruction',
  hallucination: 'Makes up facts (hallucination)',
  inappropriate_for_customer_assistant: 'Inappropriate for a customer assistant',
  sexual_content: 'Sexual content',
  violent_content: 'Violent content',
  encourages_violence_abuse_self_harm: 'Encourages violence, abuse or self-harm',
  denigrates_protected_class: 'Denigrates a protected class',
  harmful_advice: 'Gives harmful advice',
  expresses_opinion: 'Expresses an opinion',
  expresses_moral_judgment: 'Expresses a moral judgment',
};

export const FLAGS = Object.keys(FLAG_LABELS) as Flag[];

export const LIKERT_WORDS = ['', 'Terrible', 'Bad', 'Poor', 'OK', 'Good', 'Great', 'Excellent'];

export const letter = (i: number) => String.fromCharCode(65 + i);

export interface RankerProps {
  responses: string[];
  /** Response indices, best first. */
  order: number[];
  onOrder: (order: number[]) => void;
  /** Responses ranked equal to the card above them (a tie); omit to offer no ties. */
  tied?: number[];
  onTied?: (tied: number[]) => void;
  /** Per response index (not position); omit to hide scores. */
  likert?: (number | null)[];
  onLikert?: (likert: (number | null)[]) => void;
  flags?: Set<Flag>[];
  onFlags?: (flags: Set<Flag>[]) => void;
  label?: string;
}

/** The ranking the API takes: best → worst, tied responses grouped in an array (e.g. [2, [0, 3], 1]). */
export function toRanking(order: number[], tied: readonly number[] = []): RankingBody {
  const places: number[][] = [];
  order.forEach((resp, pos) => {
    if (pos > 0 && tied.includes(resp)) places[places.length - 1].push(resp);
    else places.push([resp]);
  });
  return places.map((p) => (p.length === 1 ? p[0] : p));
}

/** A ranking as text: "B > A = C > D" (tied responses joined by =). */
export const rankingText = (ranking: RankingBody) =>
  ranking.map((p) => (Array.isArray(p) ? p.map(letter).join(' = ') : letter(p))).join(' > ');

/** Each position's place number (1 = best); tied cards share their place. */
export function placeNumbers(order: number[], tied: readonly number[] = []): number[] {
  let place = 0;
  return order.map((resp, pos) => (pos > 0 && tied.includes(resp) ? place : ++place));
}

export function move<T>(list: T[], from: number, to: number): T[] {
  const out = list.slice();
  const [x] = out.splice(from, 1);
  out.splice(to, 0, x);
  return out;
}

export function Ranker(p: RankerProps) {
  const refs = useRef(new Map<number, HTMLLIElement>());
  const [focusResp, setFocusResp] = useState<number | null>(null);
  const [drag, setDrag] = useState<{ from: number; over: number | null } | null>(null);
  const k = p.responses.length;
  const tied = p.tied ?? [];
  const places = placeNumbers(p.order, tied);
  const lastPlace = places[k - 1];
  const toggleTie = (resp: number) =>
    p.onTied?.(tied.includes(resp) ? tied.filter((r) => r !== resp) : [...tied, resp]);

  // Keep keyboard focus on the card that just moved.
  useEffect(() => {
    if (focusResp !== null) refs.current.get(focusResp)?.focus();
  }, [focusResp]);

  const moveBy = (pos: number, delta: number) => {
    const to = pos + delta;
    if (to < 0 || to >= k) return;
    const resp = p.order[pos];
    p.onOrder(move(p.order, pos, to));
    setFocusResp(resp);
    requestAnimationFrame(() => refs.current.get(resp)?.focus());
  };

  const setScore = (resp: number, v: number) => {
    if (!p.likert || !p.onLikert) return;
    const next = p.likert.slice();
    next[resp] = v;
    p.onLikert(next);
  };

  const toggleFlag = (resp: number, f: Flag) => {
    if (!p.flags || !p.onFlags) return;
    const next = p.flags.map((s) => new Set(s));
    if (next[resp].has(f)) next[resp].delete(f);
    else next[resp].add(f);
    p.onFlags(next);
  };

  const onKeyDown = (e: React.KeyboardEvent, pos: number, resp: number) => {
    if (e.target !== e.currentTarget) return; // keys inside the card's controls behave normally
    if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
      e.preventDefault();
      const d = e.key === 'ArrowUp' ? -1 : 1;
      if (e.altKey) moveBy(pos, d);
      else {
        const r = p.order[pos + d];
        if (r !== undefined) refs.current.get(r)?.focus();
      }
    } else if (e.key === '=' && p.onTied && pos > 0) {
      e.preventDefault();
      toggleTie(resp);
    } else if (p.likert && /^[1-7]$/.test(e.key) && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      setScore(resp, Number(e.key));
    }
  };

  return (
    <ol className="ranker" aria-label={p.label ?? 'Responses, best first'}>
      {p.order.map((resp, pos) => {
        const score = p.likert?.[resp] ?? null;
        const nFlags = p.flags?.[resp]?.size ?? 0;
        const dropBefore = drag && drag.over === pos && drag.from > pos;
        const dropAfter = drag && drag.over === pos && drag.from < pos;
        const isTied = pos > 0 && tied.includes(resp);
        return (
          <li
            key={resp}
            ref={(el) => {
              if (el) refs.current.set(resp, el);
              else refs.current.delete(resp);
            }}
            className={`rank-card${isTied ? ' tied' : ''}${drag?.from === pos ? ' dragging' : ''}${dropBefore ? ' drop-before' : ''}${dropAfter ? ' drop-after' : ''}`}
            data-testid="rank-card"
            data-response={letter(resp)}
            tabIndex={0}
            draggable
            aria-label={`Response ${letter(resp)}, place ${places[pos]}${isTied ? ' (tied)' : ''} of ${lastPlace}${score ? `, score ${score}` : ''}`}
            onKeyDown={(e) => onKeyDown(e, pos, resp)}
            onFocus={(e) => {
              if (e.target === e.currentTarget) setFocusResp(resp);
            }}
            onDragStart={(e) => {
              e.dataTransfer.effectAllowed = 'move';
              e.dataTransfer.setData('text/plain', String(pos));
              setDrag({ from: pos, over: null });
            }}
            onDragOver={(e) => {
              e.preventDefault();
              e.dataTransfer.dropEffect = 'move';
              if (drag && drag.over !== pos) setDrag({ ...drag, over: pos });
            }}
            onDrop={(e) => {
              e.preventDefault();
              const from = drag?.from ?? Number(e.dataTransfer.getData('text/plain'));
              if (Number.isInteger(from) && from !== pos) p.onOrder(move(p.order, from, pos));
              setDrag(null);
            }}
            onDragEnd={() => setDrag(null)}
          >
            <div className="rank-side">
              <span className="rank-pos" title={isTied ? 'Tied with the response above' : 'Place'}>
                {isTied ? '=' : ''}
                {places[pos]}
              </span>
              <span className="grip" aria-hidden="true">
                ⋮⋮
              </span>
            </div>
            <div className="rank-main">
              <div className="rank-head">
                <span className="resp-letter">Response {letter(resp)}</span>
                {places[pos] === 1 && <span className="pill pill-good">best</span>}
                {places[pos] === lastPlace && lastPlace > 1 && <span className="pill pill-bad">worst</span>}
                <div className="rank-moves">
                  {p.onTied && pos > 0 && (
                    <button
                      type="button"
                      className={`btn btn-small${isTied ? ' on' : ''}`}
                      aria-pressed={isTied}
                      data-testid={`tie-${letter(resp)}`}
                      title="As good as the response above (=)"
                      onClick={() => toggleTie(resp)}
                    >
                      {isTied ? '= tied' : '= tie'}
                    </button>
                  )}
                  <button
                    type="button"
                    className="icon-btn"
                    aria-label={`Move ${letter(resp)} up`}
                    disabled={pos === 0}
                    onClick={() => moveBy(pos, -1)}
                  >
                    ↑
                  </button>
                  <button
                    type="button"
                    className="icon-btn"
                    aria-label={`Move ${letter(resp)} down`}
                    disabled={pos === k - 1}
                    onClick={() => moveBy(pos, 1)}
                  >
                    ↓
                  </button>
                </div>
              </div>
              <div className="resp-text">{p.responses[resp]}</div>
              {p.likert && (
                <div className="likert" role="radiogroup" aria-label={`Score for ${letter(resp)} (1–7)`}>
                  <span className="likert-label">Score</span>
                  {[1, 2, 3, 4, 5, 6, 7].map((v) => (
                    <button
                      key={v}
                      type="button"
                      role="radio"
                      aria-checked={score === v}
                      aria-label={`${v} ${LIKERT_WORDS[v]}`}
                      title={LIKERT_WORDS[v]}
                      className={`likert-btn${score === v ? ' on' : ''}`}
                      data-testid={`likert-${letter(resp)}-${v}`}
                      onClick={() => setScore(resp, v)}
                    >
                      {v}
                    </button>
                  ))}
                  <span className="likert-word">{score ? LIKERT_WORDS[score] : 'not scored'}</span>
                </div>
              )}
              {p.flags && (
                <details className="flags">
                  <summary data-testid={`flags-${letter(resp)}`}>
                    Flags{' '}
                    {nFlags > 0 ? (
                      <span className="pill pill-warn">{nFlags}</span>
                    ) : (
                      <span className="muted">none</span>
                    )}
                  </summary>
                  <div className="flag-grid">
                    {FLAGS.map((f) => (
                      <label key={f} className="check">
                        <input
                          type="checkbox"
                          checked={p.flags![resp].has(f)}
                          onChange={() => toggleFlag(resp, f)}
                          data-testid={`flag-${letter(resp)}-${f}`}
                        />
                        {FLAG_LABELS[f]}
                      </label>
                    ))}
                  </div>
                </details>
              )}
            </div>
          </li>
        );
      })}
    </ol>
  );
}
