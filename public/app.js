/*
 * Entry point of the client: the shell, the session, the live connection and the router. Views
 * live in the URL's hash (#/login, #/register, #/ and #/?category=SLUG, #/post/ID, #/account) so
 * Back and Forward work; until the user is logged in only the login and register views are
 * reachable.
 */
import { h, replace } from './js/dom.js';
import { mountShell } from './js/shell.js';
import { createAttention } from './js/attention.js';
import { api, errorOf } from './js/api.js';
import { LiveSocket } from './js/socket.js';
import { createMembers } from './js/members.js';
import { loginView } from './js/views/login.js';
import { registerView } from './js/views/register.js';
import { createForum } from './js/posts.js';
import { feedView } from './js/views/feed.js';
import { postView } from './js/views/post.js';
import { accountView } from './js/views/account.js';
import { mountChat } from './js/chat/chat.js';

const TITLE = 'forumd';
const ROUTES = {
    '/login': { view: loginView, signedIn: false },
    '/register': { view: registerView, signedIn: false },
    '/': { view: feedView, signedIn: true },
    '/account': { view: accountView, signedIn: true },
    '/post/:id': { view: postView, signedIn: true },
};

// the views put the scroll position back themselves (the feed on Back); the browser's own attempt comes
// before they are drawn and would land elsewhere
history.scrollRestoration = 'manual';
const shell = mountShell(document.getElementById('app'), { title: TITLE });
const attention = createAttention({ footer: shell.footer, siteTitle: TITLE });
const members = createMembers();
const state = {
    user: null,
    current: null,   // the view on screen: {node, title, destroy?}
    wanted: '/',     // where a signed-out visitor was going, to go there after logging in
};
let chat = null;     // the chat in the shell's aside, while someone is signed in

const socket = new LiveSocket({
    params: () => chat?.socketParams() ?? {},
    onState: shell.setConnection,
    checkAuth: checkSession,
});
shell.onRetry(() => socket.retryNow());
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
socket.on('message', ({ message: m }) => {
    if (m && state.user && m.from !== state.user.id)
        attention.notify('New private message', m.body, `message-${m.from}`);
});
socket.on('room.message', ({ message: m }) => {
    if (m && state.user && m.from?.id !== state.user.id && Array.isArray(m.mentions) && m.mentions.includes(state.user.id))
        attention.notify(`${m.from?.nickname ?? 'Someone'} mentioned you`, m.body, `room-${m.room}`);
});
// the chat's sidebar announces its total of unread messages (private and rooms)
document.addEventListener('forum:unread', (event) => attention.setUnread(event.detail));
const forum = createForum(socket);

/** The hash as {path, query}: '#/?category=news' → {path: '/', query: '?category=news'}. */
function hashPath() {
    const match = /^#(\/[^?#]*)(\?[^#]*)?$/.exec(location.hash);
    return match ? { path: match[1], query: match[2] ?? '' } : { path: '/', query: '' };
}

/** The ROUTES key of a path and its parameters ('/post/7' → ['/post/:id', {id: 7}]), or []. */
function routeOf(path) {
    if (ROUTES[path])
        return [path, {}];
    const post = /^\/post\/([1-9][0-9]{0,14})$/.exec(path);
    return post ? ['/post/:id', { id: Number(post[1]) }] : [];
}

/** Shows the view for the URL's hash, or the one the session allows instead (replacing the URL). */
function render({ focus }) {
    let { path, query } = hashPath();
    let [route, params] = routeOf(path);
    if (!route)
        [path, query, route, params] = ['/', '', '/', {}];
    if (ROUTES[route].signedIn && !state.user) {
        state.wanted = path + query;
        [path, query, route] = ['/login', '', '/login'];
    } else if (!ROUTES[route].signedIn && state.user) {
        [path, query, route] = ['/', '', '/'];
    }
    if (`#${path}${query}` !== location.hash)
        history.replaceState(null, '', `#${path}${query}`);

    state.current?.destroy?.();
    const ctx = {
        user: state.user, members, forum, params, query: new URLSearchParams(query),
        setTitle: (title) => attention.setViewTitle(title),
        onLoggedIn: signedIn, onAuthLost: checkSession,
    };
    state.current = ROUTES[route].view(ctx);
    replace(shell.view, state.current.node);
    attention.setViewTitle(state.current.title);
    attention.setSignedIn(Boolean(state.user));
    shell.setNav(state.user ? navigation(path) : null);
    syncChat();
    if (focus)
        shell.view.querySelector('h1')?.focus();
}

/** The chat follows the signed-in user: mounted for them, torn down when they leave or change. */
function syncChat() {
    if (chat && chat.userId !== state.user?.id) {
        chat.destroy();
        chat = null;
    }
    if (!chat && state.user)
        chat = mountChat({ aside: shell.aside, socket, user: state.user, onAuthLost: checkSession });
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
    forum.reset();
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
        forum.reset();
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

/**
 * Asks the server who this browser is: {user} (null when signed out), or null when the server
 * could not say. GET /api/auth/session answers 200 either way, so a signed-out load logs no error.
 */
async function whoAmI() {
    const res = await api('GET', '/api/auth/session');
    if (res.status !== 200 || !res.json || !('user' in res.json))
        return { res, user: undefined };
    return { res, user: res.json.user };
}

/** Asks the server whether the session lives; if it does not, back to the login view. */
async function checkSession() {
    const { user } = await whoAmI();
    if (user === null) {
        if (state.user) {
            signedOut();
            shell.notify('Your session has ended. Please log in again.');
        }
        return false;
    }
    if (user)
        adopt(user);
    return true; // alive, or unknown (server unreachable): keep trying
}

async function start() {
    // nothing in main until the session is known: a placeholder would only be pushed about by the view
    shell.view.setAttribute('aria-busy', 'true');
    const { res, user } = await whoAmI();
    if (user) {
        state.user = user;
        socket.start();
    } else if (user === undefined) {
        shell.notify(errorOf(res).message);
    }
    shell.view.removeAttribute('aria-busy');
    render({ focus: false });
    window.addEventListener('hashchange', () => {
        shell.notify('');
        render({ focus: true });
    });
}

start();
