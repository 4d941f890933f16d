/*
 * The rooms list above the members in the chat panel: the lobby, the rooms this member joined, the
 * others, each a button that opens it, with its unread and mention badges and "typing…" while
 * someone types there. Its items are kept and moved, never rebuilt, so a focused room keeps the
 * focus while the list reorders. Under the heading, "New room" opens a small form for a name.
 */
import { h, replace } from '../dom.js';
import { LOBBY_ID } from './store.js';

export const NAME_MIN = 3;
export const NAME_MAX = 40;

/** A count with the words a screen reader says after it; `sign` is shown before it but not read ("@"). */
function setBadge(el, count, what, sign = '') {
    replace(el, sign && h('span', { 'aria-hidden': 'true' }, sign), String(count), h('span', { class: 'chat-sr-only' }, ` ${what}`));
    el.hidden = count === 0;
}

/**
 * createRoomsList({rooms, onOpen, onCreate, onMore}): onOpen(roomId) when a room is chosen;
 * onCreate(name) resolves to null when the room was made or to {field, message} otherwise;
 * onMore() when the next page is wanted. Returns {node, update, setCurrent, setTyping, setStatus,
 * say, focusRoom}.
 */
export function createRoomsList({ rooms, onOpen, onCreate, onMore }) {
    const items = new Map(); // roomId → {li, button, name, state, typing, unread, mentions}
    let current = null;

    const list = h('ul', { class: 'room-list', 'aria-labelledby': 'rooms-title' });
    const status = h('p', { class: 'room-status muted', role: 'status' }, 'Loading rooms…');
    const more = h('button', { type: 'button', class: 'button button-quiet room-more', hidden: true, onclick: () => onMore() }, 'More rooms');
    // mentions in rooms that are not on screen are read out here
    const said = h('p', { class: 'chat-sr-only', 'aria-live': 'polite' });

    const nameInput = h('input', {
        id: 'room-name',
        class: 'chat-search-input',
        type: 'text',
        autocomplete: 'off',
        maxlength: NAME_MAX,
        dir: 'auto',
        'aria-describedby': 'room-name-hint',
    });
    const nameError = h('p', { class: 'field-error room-name-error', id: 'room-name-error', hidden: true });
    const createButton = h('button', { type: 'submit', class: 'button' }, 'Create');
    const form = h('form', { class: 'room-create', novalidate: true, hidden: true, 'aria-labelledby': 'room-create-title' },
        h('h4', { class: 'chat-sr-only', id: 'room-create-title' }, 'Create a room'),
        h('label', { for: 'room-name', class: 'room-create-label' }, 'Room name'),
        h('p', { class: 'hint', id: 'room-name-hint' }, `${NAME_MIN} to ${NAME_MAX} characters.`),
        h('div', { class: 'room-create-row' }, nameInput, createButton,
            h('button', { type: 'button', class: 'button button-quiet', onclick: () => showForm(false) }, 'Cancel')),
        nameError);
    const newButton = h('button', {
        type: 'button',
        class: 'button button-quiet room-new',
        'aria-expanded': 'false',
        'aria-controls': 'room-create-form',
        onclick: () => showForm(form.hidden),
    }, 'New room');
    form.id = 'room-create-form';

    const node = h('section', { class: 'chat-rooms', 'aria-labelledby': 'rooms-title' },
        h('div', { class: 'room-head' },
            h('h3', { class: 'room-heading', id: 'rooms-title' }, 'Rooms'),
            newButton),
        form, status, list, more, said);

    function showForm(open) {
        form.hidden = !open;
        newButton.setAttribute('aria-expanded', String(open));
        setError('');
        if (open) {
            nameInput.focus();
        } else {
            nameInput.value = '';
            newButton.focus();
        }
    }

    function setError(text) {
        nameError.textContent = text;
        nameError.hidden = !text;
        if (text) {
            nameInput.setAttribute('aria-invalid', 'true');
            nameInput.setAttribute('aria-describedby', 'room-name-hint room-name-error');
        } else {
            nameInput.removeAttribute('aria-invalid');
            nameInput.setAttribute('aria-describedby', 'room-name-hint');
        }
    }

    let creating = false;
    nameInput.addEventListener('input', () => setError(''));
    form.addEventListener('keydown', (event) => {
        if (event.key === 'Escape') {
            showForm(false);
            event.preventDefault(); // this Escape closed the form, not the panel
        }
    });
    form.addEventListener('submit', async (event) => {
        event.preventDefault();
        if (creating)
            return;
        const name = nameInput.value.trim();
        const length = [...name].length;
        if (length < NAME_MIN || length > NAME_MAX) {
            setError(`A room name needs ${NAME_MIN} to ${NAME_MAX} characters.`);
            nameInput.focus();
            return;
        }
        creating = true;
        form.setAttribute('aria-busy', 'true');
        const error = await onCreate(name);
        creating = false;
        form.removeAttribute('aria-busy');
        if (error) {
            setError(error.message);
            nameInput.focus();
            return;
        }
        form.hidden = true;
        nameInput.value = '';
        newButton.setAttribute('aria-expanded', 'false');
    });

    function item(room) {
        let it = items.get(room.id);
        if (it)
            return it;
        const name = h('span', { class: 'chat-user-name' });
        const state = h('span', { class: 'room-state' });
        const detail = h('span', { class: 'chat-sr-only' });
        const typing = h('span', { class: 'chat-user-typing', hidden: true }, 'typing…');
        const mentions = h('span', { class: 'chat-badge room-mention-badge', hidden: true });
        const unread = h('span', { class: 'chat-badge', hidden: true });
        const button = h('button', { type: 'button', class: 'chat-user-button', onclick: () => onOpen(room.id) },
            h('span', { class: 'room-mark', 'aria-hidden': 'true' }, '#'), name, state, detail, typing, mentions, unread);
        const li = h('li', { class: 'room-item', 'data-room-id': room.id }, button);
        it = { li, button, name, state, detail, typing, unread, mentions };
        items.set(room.id, it);
        return it;
    }

    /** Redraws the list from the store: contents in place, then the fewest moves to reach its order. */
    function update() {
        const sorted = rooms.sorted();
        const keep = new Set(sorted.map((r) => r.id));
        for (const [id, it] of items) {
            if (!keep.has(id)) {
                it.li.remove();
                items.delete(id);
            }
        }
        const focused = document.activeElement;
        sorted.forEach((room, i) => {
            const it = item(room);
            it.name.textContent = room.name;
            it.name.dir = 'auto';
            it.li.dataset.joined = String(room.joined);
            const count = `${room.memberCount} member${room.memberCount === 1 ? '' : 's'}`;
            // seen: whether one can write there; heard: that too, and how many are in
            it.state.textContent = room.id === LOBBY_ID ? 'everyone' : room.joined ? '' : 'not joined';
            it.state.hidden = it.state.textContent === '';
            it.detail.textContent = room.joined && room.id !== LOBBY_ID ? `, joined, ${count}` : `, ${count}`;
            setBadge(it.mentions, room.mentions, room.mentions === 1 ? 'mention of you' : 'mentions of you', '@');
            setBadge(it.unread, room.unread, room.unread === 1 ? 'unread message' : 'unread messages');
            if (list.children[i] !== it.li)
                list.insertBefore(it.li, list.children[i] ?? null);
        });
        if (focused && focused !== document.activeElement && list.contains(focused))
            focused.focus();
        more.hidden = rooms.nextCursor() === null;
        if (status.dataset.kind !== 'error')
            setStatus(sorted.length ? '' : 'Loading rooms…');
        setCurrent(current);
    }

    function setCurrent(roomId) {
        current = roomId;
        for (const [id, it] of items)
            it.button.setAttribute('aria-current', id === roomId ? 'true' : 'false');
    }

    function setStatus(text, { kind = '', retry = null } = {}) {
        status.dataset.kind = kind;
        replace(status, text, retry && ' ', retry && h('button', { type: 'button', class: 'button button-quiet', onclick: retry }, 'Try again'));
        status.hidden = !text;
    }

    return {
        node,
        update,
        setCurrent,
        setStatus,
        setTyping(roomId, typing) {
            const it = items.get(roomId);
            if (it)
                it.typing.hidden = !typing;
        },
        /** A short sentence for screen readers (a mention in a room that is not open). */
        say(text) {
            said.textContent = text;
        },
        focusRoom(roomId) {
            items.get(roomId)?.button.focus();
        },
    };
}
