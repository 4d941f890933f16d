/*
 * One open conversation: a header with the other member and their presence, the messages (the
 * newest PAGE first, older pages loaded when the reader scrolls near the top), the messages still
 * waiting for the server, the typing indicator and the composer.
 *
 * Messages are kept by id, so a message that arrives twice (live and in a history page, or again
 * after a reconnect) is shown once. Older pages are loaded one request at a time, and the log's
 * scrollTop grows by the height they add, so the message the reader was looking at stays put.
 */
import { h, replace } from '../dom.js';
import { api, errorOf } from '../api.js';

const PAGE = 10;
const NEAR_TOP_PX = 80;      // this close to the top, the next older page is fetched
const NEAR_BOTTOM_PX = 48;   // this close to the bottom, a new message scrolls into view
const BODY_MAX = 4000;

const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function timeOf(iso) {
    return h('time', { class: 'chat-message-time', datetime: iso, title: new Date(iso).toLocaleString() }, when(iso));
}

/**
 * createConversation({store, peerId, onSend, onInput, onBlur, onRetry, onDiscard, onClose,
 * onRead, onAuthLost}) builds the conversation with peerId. onSend(body) sends a message;
 * onInput(empty) and onBlur() drive our typing state; onRead(newestId) is called when the messages
 * on screen may hold unread ones (after the first page, and when a message from the peer arrives).
 * Returns {node, peerId, add, showTyping, renderPending, newestId, focus, destroy}.
 */
export function createConversation(opts) {
    const { store, peerId } = opts;
    const me = store.me;
    const peer = () => store.user(peerId) ?? { id: peerId, nickname: 'a member', online: false };
    const byId = new Map(); // message id → its <li>
    let hasMore = false;
    let loading = false;
    let loaded = false;
    let gone = false;

    const title = h('h3', { class: 'chat-peer-name', id: 'chat-conversation-title', tabindex: -1 });
    const presence = h('span', { class: 'chat-peer-presence' });
    const status = h('p', { class: 'chat-log-status' });
    const messages = h('ol', { class: 'chat-messages', 'aria-labelledby': 'chat-conversation-title' });
    const pendingList = h('ol', { class: 'chat-pending', 'aria-label': 'Waiting to be sent' });
    // focusable, so the keyboard can scroll it; not a live region, or every older page would be read out
    const log = h('div', { class: 'chat-log', tabindex: 0, role: 'region', 'aria-label': 'Messages' }, status, messages, pendingList);
    const announce = h('p', { class: 'chat-sr-only', 'aria-live': 'polite' });
    // the line keeps its height when empty, so the log does not jump when someone starts typing
    const typing = h('p', { class: 'chat-typing', 'data-active': 'false', 'aria-live': 'polite' });
    const input = h('textarea', {
        id: 'chat-input',
        class: 'chat-input',
        rows: 1,
        maxlength: BODY_MAX,
        placeholder: 'Write a message…',
        autocomplete: 'off',
    });
    const inputLabel = h('label', { for: 'chat-input', class: 'chat-sr-only' });
    const form = h('form', { class: 'chat-composer', novalidate: true },
        inputLabel, input, h('button', { type: 'submit', class: 'button chat-send' }, 'Send'));
    const node = h('section', { class: 'chat-conversation', 'aria-labelledby': 'chat-conversation-title', 'data-peer-id': peerId },
        h('header', { class: 'chat-conversation-head' },
            h('div', { class: 'chat-peer' }, title, presence),
            h('button', { type: 'button', class: 'button button-quiet chat-close', onclick: () => opts.onClose() }, 'Close')),
        log, typing, announce, form);

    function drawPeer() {
        const p = peer();
        title.textContent = p.nickname;
        presence.textContent = p.online ? 'online' : 'offline';
        presence.dataset.online = String(p.online);
        inputLabel.textContent = `Message to ${p.nickname}`;
    }

    const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
    const toBottom = () => {
        log.scrollTop = log.scrollHeight;
    };

    function messageItem(m) {
        const mine = m.from === me.id;
        return h('li', { class: 'chat-message', 'data-id': m.id, 'data-mine': String(mine) },
            h('p', { class: 'chat-message-meta' },
                h('span', { class: 'chat-message-author' }, mine ? me.nickname : peer().nickname), ' ', timeOf(m.created_at)),
            h('p', { class: 'chat-message-body' }, m.body));
    }

    /** Puts a message in id order; returns false when it is already shown. */
    function insert(m) {
        if (byId.has(m.id))
            return false;
        const li = messageItem(m);
        byId.set(m.id, li);
        let next = null;
        for (let el = messages.lastElementChild; el && Number(el.dataset.id) > m.id; el = el.previousElementSibling)
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
            replace(status, byId.size ? `This is the start of your conversation with ${peer().nickname}.` : `No messages yet. Say hello to ${peer().nickname}!`);
        }
        status.dataset.state = error ? 'error' : loading || !loaded ? 'loading' : hasMore ? 'more' : 'start';
    }

    async function fetchPage(before) {
        const query = before ? `?before=${before}&limit=${PAGE}` : `?limit=${PAGE}`;
        const res = await api('GET', `/api/messages/${peerId}${query}`);
        if (gone)
            return null;
        if (res.status === 200 && Array.isArray(res.json?.messages))
            return res.json;
        if (res.status === 401)
            opts.onAuthLost();
        drawStatus(errorOf(res).message);
        return null;
    }

    async function first() {
        if (loading)
            return;
        loading = true;
        drawStatus();
        const page = await fetchPage(null);
        loading = false;
        if (!page)
            return;
        loaded = true;
        hasMore = Boolean(page.has_more);
        page.messages.forEach(insert);
        drawStatus();
        toBottom();
        opts.onRead(newestId());
        fill();
    }

    /** The next older page, unless one is on its way already or there is none. */
    async function older() {
        if (loading || !loaded || !hasMore || gone)
            return;
        loading = true;
        drawStatus();
        const page = await fetchPage(oldestId());
        loading = false;
        if (!page)
            return;
        const height = log.scrollHeight;
        const top = log.scrollTop;
        hasMore = Boolean(page.has_more);
        page.messages.forEach(insert);
        drawStatus();
        log.scrollTop = top + (log.scrollHeight - height);
        fill();
    }

    /** A log too short to scroll cannot be scrolled up: load older pages until it can. */
    function fill() {
        if (hasMore && log.scrollHeight <= log.clientHeight)
            older();
    }

    const oldestId = () => Number(messages.firstElementChild?.dataset.id ?? 0) || null;
    function newestId() {
        return Number(messages.lastElementChild?.dataset.id ?? 0) || null;
    }

    log.addEventListener('scroll', () => {
        if (log.scrollTop < NEAR_TOP_PX)
            older();
    }, { passive: true });

    function renderPending() {
        const stick = nearBottom();
        replace(pendingList, store.pendingFor(peerId).map((p) => h('li', {
            class: 'chat-message',
            'data-mine': 'true',
            'data-pending': p.failed ? 'failed' : 'sending',
            'data-client-id': p.clientId,
        },
        h('p', { class: 'chat-message-meta' },
            h('span', { class: 'chat-message-author' }, me.nickname), ' ',
            h('span', { class: 'chat-message-state' }, p.failed ? 'not sent' : 'sending…')),
        h('p', { class: 'chat-message-body' }, p.body),
        p.failed && h('p', { class: 'chat-message-error' }, p.failed, ' ',
            h('button', { type: 'button', class: 'button button-quiet', onclick: () => opts.onRetry(p.clientId) }, 'Retry'), ' ',
            h('button', { type: 'button', class: 'button button-quiet', onclick: () => opts.onDiscard(p.clientId) }, 'Remove')))));
        pendingList.hidden = pendingList.childElementCount === 0;
        if (stick)
            toBottom();
    }

    input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            form.requestSubmit();
        }
    });
    input.addEventListener('input', () => opts.onInput(input.value.trim() === ''));
    input.addEventListener('blur', () => opts.onBlur());
    form.addEventListener('submit', (event) => {
        event.preventDefault();
        const body = input.value.trim();
        if (!body)
            return;
        input.value = '';
        opts.onSend(body);
        toBottom();
    });

    drawPeer();
    renderPending();
    first();

    return {
        node,
        peerId,
        /** A live message of this conversation. */
        add(m) {
            const stick = nearBottom() || m.from === me.id;
            if (!insert(m))
                return;
            if (loaded && !hasMore)
                drawStatus();
            if (stick)
                toBottom();
            if (m.from === peerId) {
                announce.textContent = `${peer().nickname}: ${m.body}`;
                opts.onRead(m.id);
            }
        },
        showTyping(active) {
            if (typing.dataset.active === String(active))
                return;
            typing.dataset.active = String(active);
            replace(typing, active && [h('span', { class: 'chat-typing-name' }, peer().nickname), ' is typing',
                h('span', { class: 'chat-dots', 'aria-hidden': 'true' }, h('span', null, '.'), h('span', null, '.'), h('span', null, '.'))]);
        },
        drawPeer,
        renderPending,
        newestId,
        focus(what) {
            (what === 'input' ? input : title).focus();
        },
        destroy() {
            gone = true;
        },
    };
}
