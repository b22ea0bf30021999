import { useState } from 'react';
import { api, type Me } from '../api.js';
import { ErrorBox } from '../ui.js';

export function LoginScreen(props: { onLogin: (me: Me) => void; notice?: string | null }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <div className="login-wrap">
      <form
        className="login card"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          api.login(username, password).then(props.onLogin, (err) => {
            setError(err);
            setBusy(false);
          });
        }}
      >
        <div className="login-brand">
          <span className="logo" aria-hidden="true">
            ik
          </span>
          <div>
            <h1>instructkit</h1>
            <p className="muted">Human feedback for instruction following</p>
          </div>
        </div>
        {props.notice && (
          <div className="banner" role="status" data-testid="signed-out-notice">
            {props.notice}
          </div>
        )}
        <label className="field">
          <span className="field-label">Username</span>
          <input
            name="username"
            autoComplete="username"
            autoFocus
            value={username}
            onChange={(e) => setUsername(e.target.value)}
          />
        </label>
        <label className="field">
          <span className="field-label">Password</span>
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" className="btn btn-primary wide" disabled={busy || !username || !password}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted small center-text">Admins create labeler accounts under People.</p>
      </form>
    </div>
  );
}
