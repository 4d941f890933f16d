/*
 * Entry point of the client: the shell, the session, the live connection and the router. Views
 * live in the URL's hash (#/login, #/register, #/, #/account) so Back and Forward work; until the
 * user is logged in only the login and register views are reachable.
 */
import { h, replace } from './js/dom.js';
import { mountShell } from './js/shell.js';
import { api, errorOf } from './js/api.js';
import { LiveSocket } from './js/socket.js';
import { createMembers } from './js/members.js';
import { loginView } from './js/views/login.js';
import { registerView } from './js/views/register.js';
import { homeView } from './js/views/home.js';
import { accountView } from './js/views/account.js';

const TITLE = 'forumd';
const ROUTES = {
    '/login': { view: loginView, signedIn: false },
    '/register': { view: registerView, signedIn: false },
    '/': { view: homeView, signedIn: true },
    '/account': { view: accountView, signedIn: true },
};

const shell = mountShell(document.getElementById('app'), { title: TITLE });
const members = createMembers();
const state = {
    user: null,
    current: null,   // the view on screen: {node, title, destroy?}
    wanted: '/',     // where a signed-out visitor was going, to go there after logging in
};

const socket = new LiveSocket({
    onState: shell.setConnection,
    checkAuth: checkSession,
});
socket.on('hello', (frame) => {
    if (frame.user)
        adopt(frame.user);
    members.forgetPresence();
});
socket.on('user.created', (frame) => {
    if (frame.user && frame.user.id !== state.user?.id)
        members.joined(frame.user);
});
socket.on('presence', (frame) => members.presence(frame.user_id, frame.online));

function hashPath() {
    const match = /^#(\/[^?#]*)$/.exec(location.hash);
    return match ? match[1] : '/';
}

/** Shows the view for the URL's hash, or the one the session allows instead (replacing the URL). */
function render({ focus }) {
    let path = hashPath();
    if (!ROUTES[path])
        path = '/';
    if (ROUTES[path].signedIn && !state.user) {
        state.wanted = path;
        path = '/login';
    } else if (!ROUTES[path].signedIn && state.user) {
        path = '/';
    }
    if (`#${path}` !== location.hash)
        history.replaceState(null, '', `#${path}`);

    state.current?.destroy?.();
    const ctx = { user: state.user, members, onLoggedIn: signedIn, onAuthLost: checkSession };
    state.current = ROUTES[path].view(ctx);
    replace(shell.view, state.current.node);
    document.title = `${state.current.title} · ${TITLE}`;
    shell.setNav(state.user ? navigation(path) : null);
    if (focus)
        shell.view.querySelector('h1')?.focus();
}

function navigation(path) {
    const link = (href, label) =>
        h('a', { class: 'nav-link', href: `#${href}`, 'aria-current': path === href ? 'page' : false }, label);
    return [
        link('/', 'Forum'),
        link('/account', 'Account'),
        h('button', { type: 'button', class: 'button button-quiet', onclick: logOut }, 'Log out'),
    ];
}

function signedIn(user) {
    state.user = user;
    shell.notify('');
    const path = state.wanted;
    state.wanted = '/';
    history.replaceState(null, '', `#${path}`);
    render({ focus: true });
    socket.start();
}

function signedOut() {
    socket.stop();
    state.user = null;
    state.wanted = '/';
    members.clear();
    history.replaceState(null, '', '#/login');
    render({ focus: true });
}

/**
 * The server says who this browser is signed in as. Another tab may have logged out and in as
 * someone else (the cookie is shared): then this page redraws for that account.
 */
function adopt(user) {
    const changed = state.user !== null && state.user.id !== user.id;
    state.user = user;
    if (changed) {
        members.clear();
        render({ focus: false });
    }
}

async function logOut() {
    socket.stop();
    const res = await api('POST', '/api/auth/logout');
    // 401: the session had already ended, which is what logging out wanted
    if (res.status === 204 || res.status === 401) {
        shell.notify('');
        signedOut();
    } else {
        shell.notify(`Logging out failed. ${errorOf(res).message}`);
        socket.start();
    }
}

/** Asks the server whether the session lives; if it does not, back to the login view. */
async function checkSession() {
    const res = await api('GET', '/api/auth/me');
    if (res.status === 401) {
        if (state.user) {
            signedOut();
            shell.notify('Your session has ended. Please log in again.');
        }
        return false;
    }
    if (res.status === 200 && res.json?.user)
        adopt(res.json.user);
    return true; // alive, or unknown (server unreachable): keep trying
}

async function start() {
    replace(shell.view, h('p', { class: 'muted' }, 'Loading…'));
    const res = await api('GET', '/api/auth/me');
    if (res.status === 200 && res.json?.user) {
        state.user = res.json.user;
        socket.start();
    } else if (res.status !== 401) {
        shell.notify(errorOf(res).message);
    }
    render({ focus: false });
    window.addEventListener('hashchange', () => {
        shell.notify('');
        render({ focus: true });
    });
}

start();
