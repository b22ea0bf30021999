export function SplitPicker(props: { split: 'training' | 'heldout'; onSplit: (s: 'training' | 'heldout') => void }) {
  return (
    <div className="seg" role="radiogroup" aria-label="Split">
      {(['training', 'heldout'] as const).map((s) => (
        <button
          key={s}
          type="button"
          role="radio"
          aria-checked={props.split === s}
          className={props.split === s ? 'on' : ''}
          onClick={() => props.onSplit(s)}
        >
          {s === 'training' ? 'Training' : 'Held out'}
        </button>
      ))}
    </div>
  );
}
