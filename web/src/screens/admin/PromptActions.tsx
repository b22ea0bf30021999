/**
 * A prompt row's text and its edit / archive controls. The server refuses to edit a prompt that already has labels
 * (they would silently describe another text): the message says to archive it and add the new text instead.
 */
import { useState } from 'react';
import { api, type PromptRow } from '../../api.js';
import { ErrorBox } from '../../ui.js';

export function PromptText(props: { row: PromptRow; onChanged: (message: string) => void }) {
  const { row } = props;
  const [editing, setEditing] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const change = async (patch: { text?: string; archived?: boolean }, message: string) => {
    setError(null);
    try {
      await api.patchPrompt(row.id, patch);
      setEditing(null);
      props.onChanged(message);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <td className="clip">
        {editing === null ? (
          row.text
        ) : (
          <input
            type="text"
            className="wide"
            aria-label={`Text of prompt ${row.id}`}
            value={editing}
            data-testid={`prompt-edit-${row.id}`}
            onChange={(e) => setEditing(e.target.value)}
          />
        )}
        <ErrorBox error={error} />
      </td>
      <td className="row gap">
        {editing === null ? (
          <>
            {!row.archived && (
              <button type="button" className="btn btn-small" onClick={() => setEditing(row.text)}>
                Edit
              </button>
            )}
            <button
              type="button"
              className="btn btn-small"
              data-testid={`prompt-archive-${row.id}`}
              title="Archived prompts and their tasks are not labeled or exported; their labels are kept"
              onClick={() =>
                void change({ archived: !row.archived }, row.archived ? 'Prompt restored' : 'Prompt archived')
              }
            >
              {row.archived ? 'Restore' : 'Archive'}
            </button>
          </>
        ) : (
          <>
            <button
              type="button"
              className="btn btn-small btn-primary"
              disabled={!editing.trim()}
              onClick={() => void change({ text: editing }, 'Prompt saved')}
            >
              Save
            </button>
            <button type="button" className="btn btn-small" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </>
        )}
      </td>
    </>
  );
}
