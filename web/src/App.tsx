/** App shell: session bootstrap, role-aware navigation, routes. */
import { useEffect, useState } from 'react';
import { api, type Me } from './api.js';
import {
  AdminData,
  AdminEvals,
  AdminModels,
  AdminOverview,
  AdminPeople,
  AdminReview,
  AdminScreening,
  AdminSettings,
  AdminTrain,
} from './screens/admin/index.js';
import { ChatScreen } from './screens/Chat.js';
import { LabelScreen } from './screens/Label.js';
import { LoginScreen } from './screens/Login.js';
import { Empty, ErrorBox, Link, navigate, Spinner, ToastHost, usePath } from './ui.js';

const ADMIN_NAV = [
  ['/admin', 'Overview'],
  ['/admin/data', 'Prompts & tasks'],
  ['/admin/review', 'Review'],
  ['/admin/screening', 'Screening'],
  ['/admin/train', 'Train'],
  ['/admin/models', 'Models'],
  ['/admin/evals', 'Evals'],
  ['/admin/settings', 'Settings'],
  ['/admin/people', 'People'],
  ['/chat', 'Chat'],
] as const;
const LABELER_NAV = [
  ['/label', 'Tasks'],
  ['/chat', 'Chat'],
] as const;

const home = (m: Me) => (m.user.role === 'admin' ? '/admin' : '/label');

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const path = usePath();

  useEffect(() => {
    api.me().then(setMe, setError);
  }, []);

  // Why the user was signed out, for the sign-in screen (their unsent work is kept in local storage).
  const [signedOut, setSignedOut] = useState<string | null>(null);
  useEffect(() => {
    const out = (e: Event) => {
      const { error } = (e as CustomEvent<{ error?: string }>).detail ?? {};
      setSignedOut(
        error === 'session_expired'
          ? 'Your session expired, so you were signed out. Sign in again: your unsent work is kept on this device.'
          : 'You were signed out (your account was changed or your session ended). Sign in again: your unsent work is kept on this device.',
      );
      setMe(null);
    };
    window.addEventListener('ik:signed-out', out);
    return () => window.removeEventListener('ik:signed-out', out);
  }, []);

  useEffect(() => {
    if (me === undefined) return;
    if (me === null && path !== '/login') navigate('/login', true);
    else if (me && (path === '/' || path === '/login')) navigate(home(me), true);
    else if (me && me.user.role === 'labeler' && path.startsWith('/admin')) navigate('/label', true);
  }, [me, path]);

  if (error) return <ErrorBox error={error} />;
  if (me === undefined) {
    return (
      <div className="boot">
        <Spinner />
      </div>
    );
  }
  if (me === null) {
    return (
      <ToastHost>
        <LoginScreen
          notice={signedOut}
          onLogin={(m) => {
            setSignedOut(null);
            setMe(m);
            navigate(home(m), true);
          }}
        />
      </ToastHost>
    );
  }

  const nav = me.user.role === 'admin' ? ADMIN_NAV : LABELER_NAV;
  const screens: Record<string, () => React.ReactNode> = {
    '/admin': () => <AdminOverview />,
    '/admin/data': () => <AdminData />,
    '/admin/review': () => <AdminReview />,
    '/admin/screening': () => <AdminScreening />,
    '/admin/evals': () => <AdminEvals />,
    '/admin/train': () => <AdminTrain />,
    '/admin/models': () => <AdminModels />,
    '/admin/settings': () => <AdminSettings />,
    '/admin/people': () => <AdminPeople />,
    '/label': () => <LabelScreen />,
    '/chat': () => <ChatScreen />,
  };
  const screen = screens[path];

  return (
    <ToastHost>
      <div className="shell">
        <header className="topbar">
          <div className="brand">
            <span className="logo" aria-hidden="true">
              ik
            </span>
            instructkit
          </div>
          <nav className="nav" aria-label="Main">
            {nav.map(([to, label]) => (
              <Link key={to} to={to} className="nav-link" aria-current={path === to ? 'page' : undefined}>
                {label}
              </Link>
            ))}
          </nav>
          <div className="who">
            <span className="who-name">{me.user.username}</span>
            <span className="pill">{me.user.role}</span>
            <button
              type="button"
              className="btn btn-small btn-ghost"
              onClick={() =>
                void api.logout().finally(() => {
                  setMe(null);
                  navigate('/login', true);
                })
              }
            >
              Sign out
            </button>
          </div>
        </header>
        <main className="main">
          {screen ? (
            <div key={path}>{screen()}</div>
          ) : (
            <div className="page">
              <Empty icon="?" title="Nothing here">
                <Link to={home(me)}>Go to the start page</Link>
              </Empty>
            </div>
          )}
        </main>
      </div>
    </ToastHost>
  );
}
