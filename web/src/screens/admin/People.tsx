/** Admin people: users, groups, waive screening, disable, reset passwords. */
import { useState } from 'react';
import { api } from '../../api.js';
import { Card, ErrorBox, errorText, useLoad, useToast } from '../../ui.js';

export function AdminPeople() {
  const toast = useToast();
  const users = useLoad(() => api.users());
  const groups = useLoad(() => api.groups());
  const [u, setU] = useState({ username: '', password: '', role: 'labeler' as 'admin' | 'labeler', group: 'training' });
  const [g, setG] = useState({ name: '', split: 'training' as 'training' | 'heldout' });
  const [error, setError] = useState<unknown>(null);

  const act = async (f: () => Promise<unknown>, msg: string): Promise<boolean> => {
    setError(null);
    try {
      await f();
      toast(msg);
      users.reload();
      groups.reload();
      return true;
    } catch (e) {
      setError(e);
      toast(errorText(e), 'error');
      return false;
    }
  };

  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>People</h1>
          <p className="lede">Labelers belong to a group; a group works on the training or the held-out split.</p>
        </div>
      </div>
      <ErrorBox error={error} />
      <div className="grid-2-1">
        <Card
          title={
            <>
              Users <span className="count">{users.data?.users.length ?? 0}</span>
            </>
          }
        >
          <table className="table">
            <thead>
              <tr>
                <th>User</th>
                <th>Role</th>
                <th>Group</th>
                <th>Screening</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(users.data?.users ?? []).map((x) => (
                <tr key={x.id} className={x.disabled ? 'disabled' : ''}>
                  <td className="strong">{x.username}</td>
                  <td>
                    <span className={`pill ${x.role === 'admin' ? 'pill-accent' : ''}`}>{x.role}</span>
                  </td>
                  <td>
                    {x.role === 'labeler' ? (
                      <select
                        aria-label={`Group of ${x.username}`}
                        value={x.group ?? ''}
                        onChange={(e) =>
                          void act(() => api.patchUser(x.id, { group: e.target.value }), 'Group changed')
                        }
                      >
                        {(groups.data?.groups ?? []).map((gr) => (
                          <option key={gr.id} value={gr.name}>
                            {gr.name}
                          </option>
                        ))}
                      </select>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                  <td>
                    {x.role === 'labeler' &&
                      (x.screeningPassed ? (
                        <span className="pill pill-good">passed</span>
                      ) : (
                        <button
                          type="button"
                          className="btn btn-small"
                          onClick={() =>
                            void act(
                              () => api.patchUser(x.id, { screeningPassed: true }),
                              `${x.username} may label now`,
                            )
                          }
                        >
                          Mark passed
                        </button>
                      ))}
                  </td>
                  <td className="right">
                    <button
                      type="button"
                      className="btn btn-small btn-ghost"
                      onClick={() =>
                        void act(
                          () => api.patchUser(x.id, { disabled: !x.disabled }),
                          `${x.username} ${x.disabled ? 'enabled' : 'disabled'}`,
                        )
                      }
                    >
                      {x.disabled ? 'Enable' : 'Disable'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Card>
        <div className="stack">
          <Card title="Add a user">
            <form
              className="stack"
              onSubmit={(e) => {
                e.preventDefault();
                void act(
                  () =>
                    api.createUser({
                      username: u.username,
                      password: u.password,
                      role: u.role,
                      group: u.role === 'labeler' ? u.group : undefined,
                    }),
                  `Created ${u.username}`,
                ).then((ok) => ok && setU({ ...u, username: '', password: '' }));
              }}
            >
              <label className="field">
                <span className="field-label">Username</span>
                <input
                  value={u.username}
                  autoComplete="off"
                  data-testid="new-username"
                  onChange={(e) => setU({ ...u, username: e.target.value })}
                />
              </label>
              <label className="field">
                <span className="field-label">Password (8+ characters)</span>
                <input
                  type="password"
                  value={u.password}
                  autoComplete="new-password"
                  data-testid="new-password"
                  onChange={(e) => setU({ ...u, password: e.target.value })}
                />
              </label>
              <div className="row gap">
                <label className="field grow">
                  <span className="field-label">Role</span>
                  <select value={u.role} onChange={(e) => setU({ ...u, role: e.target.value as 'admin' | 'labeler' })}>
                    <option value="labeler">labeler</option>
                    <option value="admin">admin</option>
                  </select>
                </label>
                {u.role === 'labeler' && (
                  <label className="field grow">
                    <span className="field-label">Group</span>
                    <select value={u.group} onChange={(e) => setU({ ...u, group: e.target.value })}>
                      {(groups.data?.groups ?? []).map((gr) => (
                        <option key={gr.id} value={gr.name}>
                          {gr.name}
                        </option>
                      ))}
                    </select>
                  </label>
                )}
              </div>
              <button
                type="submit"
                className="btn btn-primary"
                disabled={!u.username || u.password.length < 8}
                data-testid="create-user"
              >
                Create user
              </button>
            </form>
          </Card>
          <Card title="Groups">
            <ul className="plain-list">
              {(groups.data?.groups ?? []).map((gr) => (
                <li key={gr.id}>
                  <span className="strong">{gr.name}</span>
                  <span className={`pill ${gr.split === 'heldout' ? 'pill-warn' : ''}`}>{gr.split}</span>
                </li>
              ))}
            </ul>
            <form
              className="row gap"
              onSubmit={(e) => {
                e.preventDefault();
                void act(() => api.createGroup(g.name, g.split), `Group ${g.name} created`).then(
                  (ok) => ok && setG({ ...g, name: '' }),
                );
              }}
            >
              <input
                placeholder="new group"
                aria-label="Group name"
                value={g.name}
                onChange={(e) => setG({ ...g, name: e.target.value })}
              />
              <select
                aria-label="Split"
                value={g.split}
                onChange={(e) => setG({ ...g, split: e.target.value as 'training' | 'heldout' })}
              >
                <option value="training">training</option>
                <option value="heldout">heldout</option>
              </select>
              <button type="submit" className="btn" disabled={!g.name}>
                Add
              </button>
            </form>
          </Card>
        </div>
      </div>
    </div>
  );
}
