/*
 * One open room: a header with its name, member count and Join/Leave, the messages with their
 * senders (the newest PAGE first whatever the window's height, older pages when the reader goes up
 * near the top, exactly as a private conversation: chat/log.js), the messages still waiting for the server, who is typing, and the composer.
 *
 * Messages are kept by id, so one that arrives twice (live and in a history page, or replayed after
 * a reconnect) is shown once. A message that mentions the reader is marked, and their @nickname in
 * it highlighted. What the reader has seen is what reaches the bottom of the log: onRead(id) is
 * called only for a message shown there while the log is scrolled to its end.
 *
 * A refused message (rate_limited, forbidden, …) goes back into the composer with the reason above
 * it, so nothing typed is lost.
 */
import { h, replace } from '../dom.js';
import { api, errorOf } from '../api.js';
import { LOBBY_ID } from './store.js';
import { withLinks } from '../chat/links.js';
import { timeAgo } from '../chat/times.js';
import { decorate, watchUpward } from '../chat/log.js';

const PAGE = 10;
const NEAR_TOP_PX = 80;      // this close to the top, the next older page is fetched
const NEAR_BOTTOM_PX = 48;   // this close to the bottom, a new message scrolls into view and is read
const BODY_MAX = 4000;

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The body as nodes: web addresses as links, and each @nickname of the reader in a <mark>
 * (nickname characters: API.md) in the text between them.
 */
function bodyWithMentions(body, nickname) {
    const re = new RegExp(`@${escapeRe(nickname)}(?![A-Za-z0-9_.-])`, 'gi');
    return withLinks(body, (text) => {
        const out = [];
        let at = 0;
        for (const m of text.matchAll(re)) {
            out.push(text.slice(at, m.index), h('mark', { class: 'room-mention' }, m[0]));
            at = m.index + m[0].length;
        }
        out.push(text.slice(at));
        return out;
    });
}

/**
 * createRoomView({rooms, roomId, draft, onSend, onInput, onBlur, onJoin, onLeave, onClose, onRead,
 * escapeCloses, onAuthLost}): rooms is the rooms store; draft what its composer held when the room
 * was last open. onSend(body) sends; onJoin() and onLeave() resolve to an error text or null;
 * onRead(newestId) is called for what the reader has in view; escapeCloses() says whether Escape
 * closes the room (a desktop column).
 * Returns {node, roomId, add, refused, showTyping, drawRoom, renderPending, newestId, viewed, draft, focus, destroy}.
 */
export function createRoomView(opts) {
    const { rooms, roomId } = opts;
    const me = rooms.me;
    const room = () => rooms.room(roomId) ?? { id: roomId, name: 'this room', memberCount: 0, joined: false };
    const byId = new Map(); // message id → its <li>
    let hasMore = false;
    let loading = false;
    let loaded = false;
    let joined = null;      // the membership the log was drawn for
    let gone = false;
    let run = 0;            // bumped when the log starts again (a join): older answers are dropped

    const title = h('h3', { class: 'chat-peer-name', id: 'room-title', tabindex: -1 });
    const meta = h('span', { class: 'room-meta' });
    const membership = h('button', { type: 'button', class: 'button button-quiet room-membership', onclick: () => toggleMembership() });
    const status = h('p', { class: 'chat-log-status' });
    const messages = h('ol', { class: 'chat-messages', 'aria-labelledby': 'room-title' });
    const pendingList = h('ol', { class: 'chat-pending', 'aria-label': 'Waiting to be sent' });
    const log = h('div', { class: 'chat-log', tabindex: 0, role: 'region', 'aria-label': 'Messages' }, status, messages, pendingList);
    const announce = h('p', { class: 'chat-sr-only', 'aria-live': 'polite' });
    const typing = h('p', { class: 'chat-typing', 'data-active': 'false', 'aria-live': 'polite' });
    const problem = h('p', { class: 'room-problem', role: 'alert', hidden: true });
    const input = h('textarea', {
        id: 'room-input',
        class: 'chat-input',
        rows: 1,
        maxlength: BODY_MAX,
        placeholder: 'Write a message…',
        autocomplete: 'off',
        dir: 'auto',
    });
    input.value = opts.draft ?? '';
    const inputLabel = h('label', { for: 'room-input', class: 'chat-sr-only' });
    const form = h('form', { class: 'chat-composer', novalidate: true },
        inputLabel, input, h('button', { type: 'submit', class: 'button chat-send' }, 'Send'));
    const joinHint = h('div', { class: 'room-join', hidden: true },
        h('p', { class: 'muted' }),
        h('button', { type: 'button', class: 'button room-join-button', onclick: () => toggleMembership() }));
    const node = h('section', { class: 'chat-conversation room-view', 'aria-labelledby': 'room-title', 'data-room-id': roomId },
        h('header', { class: 'chat-conversation-head' },
            h('div', { class: 'chat-peer' }, title, meta),
            membership,
            h('button', { type: 'button', class: 'button button-quiet chat-close', onclick: () => opts.onClose() }, 'Close')),
        joinHint, log, typing, announce, problem, form);

    const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
    const toBottom = () => {
        log.scrollTop = log.scrollHeight;
    };

    /** Header, membership and which parts show; a join (here or in another tab) starts the log. */
    function drawRoom() {
        const r = room();
        title.textContent = r.name;
        title.dir = 'auto';
        meta.textContent = `${r.memberCount} member${r.memberCount === 1 ? '' : 's'}`;
        inputLabel.textContent = `Message to ${r.name}`;
        membership.hidden = r.id === LOBBY_ID || !r.joined;
        membership.textContent = 'Leave';
        membership.setAttribute('aria-label', `Leave ${r.name}`);
        joinHint.hidden = r.joined;
        joinHint.querySelector('p').textContent = `You are not in ${r.name}. Join it to read and write there.`;
        joinHint.querySelector('button').textContent = `Join ${r.name}`;
        log.hidden = !r.joined;
        typing.hidden = !r.joined;
        form.hidden = !r.joined;
        if (r.joined !== joined) {
            joined = r.joined;
            restart();
        }
    }

    function restart() {
        run += 1;
        byId.clear();
        replace(messages);
        hasMore = false;
        loading = false;
        loaded = false;
        if (joined)
            first();
    }

    async function toggleMembership() {
        const r = room();
        const button = r.joined ? membership : joinHint.querySelector('button');
        button.setAttribute('aria-busy', 'true');
        const error = await (r.joined ? opts.onLeave() : opts.onJoin());
        button.removeAttribute('aria-busy');
        if (gone)
            return;
        if (error) {
            showProblem(error);
            return;
        }
        showProblem('');
        drawRoom();
        (room().joined ? input : joinHint.querySelector('button')).focus();
    }

    function messageItem(m) {
        const mine = m.from?.id === me.id;
        const mentioned = !mine && Array.isArray(m.mentions) && m.mentions.includes(me.id);
        return h('li', {
            class: 'chat-message',
            'data-id': m.id,
            'data-mine': String(mine),
            'data-mention': String(mentioned),
            'data-from': m.from?.id ?? 0,
            'data-at': m.created_at,
        },
        h('p', { class: 'chat-message-meta' },
            h('span', { class: 'chat-message-author', dir: 'auto' }, m.from?.nickname ?? 'a member'), ' ',
            timeAgo(m.created_at, { class: 'chat-message-time' }),
            mentioned && h('span', { class: 'room-mention-label' }, 'mentions you')),
        h('p', { class: 'chat-message-body', dir: 'auto' }, bodyWithMentions(m.body, me.nickname)));
    }

    /** Puts a message in id order; returns false when it is already shown. */
    function insert(m) {
        if (byId.has(m.id))
            return false;
        const li = messageItem(m);
        byId.set(m.id, li);
        let next = null;
        // past the newer messages (and the day lines among them, which decorate() puts back in place)
        for (let el = messages.lastElementChild; el && !(Number(el.dataset.id) < m.id); el = el.previousElementSibling)
            next = el;
        messages.insertBefore(li, next);
        return true;
    }

    function drawStatus(error) {
        if (error) {
            replace(status, error, ' ', h('button', { type: 'button', class: 'button button-quiet', onclick: () => (loaded ? older() : first()) }, 'Try again'));
        } else if (!loaded || loading) {
            replace(status, loaded ? 'Loading older messages…' : 'Loading messages…');
        } else if (hasMore) {
            replace(status, h('button', { type: 'button', class: 'button button-quiet chat-older', onclick: () => older() }, 'Show older messages'));
        } else {
            replace(status, byId.size ? `This is the start of ${room().name}.` : `No messages in ${room().name} yet. Say hello!`);
        }
        status.dataset.state = error ? 'error' : loading || !loaded ? 'loading' : hasMore ? 'more' : 'start';
    }

    async function fetchPage(before) {
        const mine = run;
        const query = before ? `?before=${before}&limit=${PAGE}` : `?limit=${PAGE}`;
        const res = await api('GET', `/api/rooms/${roomId}/messages${query}`);
        if (gone || mine !== run)
            return null;
        if (res.status === 200 && Array.isArray(res.json?.messages))
            return res.json;
        loading = false;
        if (res.status === 401)
            opts.onAuthLost();
        drawStatus(res.status === 403 ? `You are not a member of ${room().name}.` : errorOf(res).message);
        return null;
    }

    async function first() {
        if (loading)
            return;
        loading = true;
        drawStatus();
        const page = await fetchPage(null);
        if (!page)
            return;
        loading = false;
        loaded = true;
        hasMore = Boolean(page.has_more);
        page.messages.forEach(insert);
        decorate(messages);
        drawStatus();
        toBottom();
        viewed();
    }

    /** The next older page, unless one is on its way already or there is none. */
    async function older() {
        if (loading || !loaded || !hasMore || gone)
            return;
        loading = true;
        drawStatus();
        const page = await fetchPage(oldestId());
        if (!page)
            return;
        loading = false;
        // the message that was at the top stays where it was: measured on it rather than on the
        // log's height, which also changes when it joins the group of the page above
        const anchor = messages.querySelector(':scope > li[data-id]');
        const y = anchor?.getBoundingClientRect().top ?? 0;
        hasMore = Boolean(page.has_more);
        page.messages.forEach(insert);
        decorate(messages);
        drawStatus();
        if (anchor)
            log.scrollTop += anchor.getBoundingClientRect().top - y;
    }

    const oldestId = () => Number(messages.querySelector(':scope > li[data-id]')?.dataset.id ?? 0) || null;
    function newestId() {
        return Number([...messages.querySelectorAll(':scope > li[data-id]')].at(-1)?.dataset.id ?? 0) || null;
    }

    /** The end of the log is in view: everything up to the newest message has been shown. */
    function viewed() {
        if (loaded && !log.hidden && nearBottom() && newestId())
            opts.onRead(newestId());
    }

    const stopWatching = watchUpward(log, NEAR_TOP_PX, () => older());
    log.addEventListener('scroll', () => viewed(), { passive: true });

    function renderPending() {
        const stick = nearBottom();
        replace(pendingList, rooms.pendingFor(roomId).map((p) => h('li', {
            class: 'chat-message',
            'data-mine': 'true',
            'data-pending': 'sending',
            'data-client-id': p.clientId,
        },
        h('p', { class: 'chat-message-meta' },
            h('span', { class: 'chat-message-author' }, me.nickname), ' ',
            h('span', { class: 'chat-message-state' }, 'sending…')),
        h('p', { class: 'chat-message-body', dir: 'auto' }, p.body))));
        pendingList.hidden = pendingList.childElementCount === 0;
        if (stick)
            toBottom();
    }

    function showProblem(text) {
        problem.textContent = text;
        problem.hidden = !text;
    }

    input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            form.requestSubmit();
        }
    });
    input.addEventListener('input', () => opts.onInput(input.value.trim() === ''));
    input.addEventListener('blur', () => opts.onBlur());
    node.addEventListener('keydown', (event) => {
        if (event.key === 'Escape' && !event.defaultPrevented && opts.escapeCloses?.()) {
            event.preventDefault();
            opts.onClose();
        }
    });
    form.addEventListener('submit', (event) => {
        event.preventDefault();
        const body = input.value.trim();
        if (!body)
            return;
        input.value = '';
        showProblem('');
        opts.onSend(body);
        toBottom();
    });

    drawRoom();
    renderPending();

    return {
        node,
        roomId,
        /**
         * A live (or replayed) message of this room; returns whether it is in view at the end of the
         * log (read, when the room itself is in front of the reader) or only scrolled past.
         */
        add(m) {
            const stick = nearBottom() || m.from?.id === me.id;
            if (!insert(m))
                return true;
            decorate(messages);
            if (loaded && !hasMore)
                drawStatus();
            if (stick)
                toBottom();
            if (m.from?.id !== me.id) {
                const mentioned = Array.isArray(m.mentions) && m.mentions.includes(me.id);
                announce.textContent = `${m.from?.nickname ?? 'a member'}${mentioned ? ' mentions you' : ''}: ${m.body}`;
            }
            viewed();
            return loaded && !log.hidden && nearBottom();
        },
        /**
         * A message of ours the server refused: its text goes back into the composer (after what is
         * there, so a burst comes back in order) with the reason above it.
         */
        refused(item, reason) {
            const now = input.value.trim();
            input.value = now ? `${now}\n${item.body}` : item.body;
            showProblem(reason);
        },
        showTyping(sentence) {
            const active = sentence !== '';
            if (typing.dataset.active === String(active) && typing.dataset.sentence === sentence)
                return;
            typing.dataset.active = String(active);
            typing.dataset.sentence = sentence;
            replace(typing, active && [sentence.replace(/…$/, ''),
                h('span', { class: 'chat-dots', 'aria-hidden': 'true' }, h('span', null, '.'), h('span', null, '.'), h('span', null, '.'))]);
        },
        drawRoom,
        renderPending,
        newestId,
        viewed,
        /** What is written in the composer and not sent. */
        draft: () => input.value,
        focus(what) {
            if (what === 'input' && !form.hidden)
                input.focus();
            else
                title.focus();
        },
        destroy() {
            gone = true;
            stopWatching();
        },
    };
}
