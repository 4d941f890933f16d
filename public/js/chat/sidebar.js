/*
 * The chat's frame in the shell's <aside>: a title bar (on narrow screens a button that opens and
 * closes the panel), the members list and a slot for the open conversation. The list follows the
 * store: presence marks, unread badges and the order. Its items are kept and moved, never rebuilt,
 * so a focused member keeps the focus while the list reorders.
 *
 * The list is loaded a page at a time: at its end a "More members" button asks for the next page,
 * and does so by itself whenever it scrolls into view. Above the list, a search field narrows it to
 * the nicknames that start with what is typed (the server does the search, a page at a time too).
 * Each member shows when their last message with the reader was (GET /api/users gives its time,
 * not its text).
 *
 * On a narrow screen the open panel covers the page: it is then a modal dialog (the page behind is
 * inert, Tab and Shift+Tab go round inside it, Escape closes it).
 */
import { h, replace } from '../dom.js';
import { timeAgo } from './times.js';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), textarea:not([disabled]), select, [tabindex]:not([tabindex="-1"])';

function badge(count, what) {
    return h('span', { class: 'chat-badge', hidden: count === 0 },
        String(count), h('span', { class: 'chat-sr-only' }, ` ${what}`));
}

function setBadge(el, count, what) {
    replace(el, String(count), h('span', { class: 'chat-sr-only' }, ` ${what}`));
    el.hidden = count === 0;
}

// how long typing must pause before the search goes to the server
const SEARCH_DELAY_MS = 250;

/**
 * createSidebar({store, onOpen, onExpand, onSearch, onMore, above, otherUnread}): onOpen(userId) when
 * a member is chosen; onExpand(open) when the narrow-screen panel opens or closes; onSearch(text)
 * when the search text changes ('' for everyone); onMore() when the next page is wanted (the list's
 * end is in view). above: a node for the panel above the members (the rooms list); otherUnread():
 * unread messages elsewhere (rooms) for the panel's total badge.
 * Returns {node, slot, update, updateTotal, setCurrent, setOtherOpen, setTyping, setExpanded,
 * expanded, setStatus, focusUser}.
 */
export function createSidebar({ store, onOpen, onExpand, onSearch, onMore, above = null, otherUnread = () => 0, narrow = () => false }) {
    const items = new Map(); // userId → {li, button, name, state, typing, badge}
    let current = null;
    let otherOpen = false; // something else (a room) fills the slot
    let isExpanded = false;
    let endInView = false;
    let searchTimer = null;
    let isModal = false;
    const inerted = new Set(); // what this dialog made inert, and only that, is given back

    const list = h('ul', { class: 'chat-user-list', 'aria-labelledby': 'chat-users-title' });
    const status = h('p', { class: 'chat-users-status muted', role: 'status' }, 'Loading members…');
    const more = h('button', { type: 'button', class: 'button button-quiet chat-more', hidden: true, onclick: () => onMore() },
        'More members');
    const search = h('input', {
        type: 'search',
        class: 'chat-search-input',
        id: 'chat-search',
        autocomplete: 'off',
        autocapitalize: 'none',
        spellcheck: 'false',
        maxlength: 32,
        dir: 'auto',
        placeholder: 'Search by nickname',
        oninput: () => {
            clearTimeout(searchTimer);
            searchTimer = setTimeout(() => onSearch(search.value.trim()), SEARCH_DELAY_MS);
        },
        onkeydown: (event) => {
            if (event.key === 'Enter') {
                clearTimeout(searchTimer);
                onSearch(search.value.trim());
                event.preventDefault();
            } else if (event.key === 'Escape' && search.value !== '') {
                search.value = '';
                clearTimeout(searchTimer);
                onSearch('');
                event.preventDefault(); // the panel stays open: this Escape cleared the search
            }
        },
    });
    const searchForm = h('div', { class: 'chat-search', role: 'search' },
        h('label', { class: 'chat-sr-only', for: 'chat-search' }, 'Search members by nickname'),
        search);
    const totalBadge = badge(0, 'unread');
    const toggle = h('button', {
        type: 'button',
        class: 'chat-toggle',
        'aria-expanded': 'false',
        'aria-controls': 'chat-panel',
        onclick: () => setExpanded(!isExpanded, { focus: true }),
    }, h('span', { class: 'chat-toggle-label' }, 'Messages'), totalBadge, h('span', { class: 'chat-chevron', 'aria-hidden': 'true' }));
    const slot = h('div', { class: 'chat-slot' });
    const panel = h('div', { class: 'chat-panel', id: 'chat-panel' },
        above,
        h('section', { class: 'chat-users', 'aria-labelledby': 'chat-users-title' },
            h('h3', { class: 'chat-sr-only', id: 'chat-users-title' }, 'Direct messages'),
            searchForm,
            status,
            list,
            more),
        slot);
    const node = h('div', { class: 'chat', 'data-expanded': 'false' },
        h('div', { class: 'chat-bar' },
            h('h2', { class: 'chat-title', id: 'chat-title' }, 'Messages'),
            toggle),
        panel);
    // the end of the list scrolled into view: the next page, if there is one
    const watchEnd = new IntersectionObserver((entries) => {
        endInView = entries.some((e) => e.isIntersecting);
        if (endInView && store.nextCursor() !== null)
            onMore();
    });
    watchEnd.observe(more);
    node.addEventListener('keydown', (event) => {
        if (event.key === 'Escape' && isExpanded && !event.defaultPrevented) {
            setExpanded(false, { focus: true });
            event.preventDefault();
        } else if (event.key === 'Tab' && isModal) {
            // the focus goes round inside the dialog
            const all = [...node.querySelectorAll(FOCUSABLE)].filter((el) => el.checkVisibility());
            const first = all[0];
            const last = all.at(-1);
            if (event.shiftKey && document.activeElement === first) {
                last.focus();
                event.preventDefault();
            } else if (!event.shiftKey && document.activeElement === last) {
                first.focus();
                event.preventDefault();
            }
        }
    });

    /** The open panel of a narrow screen is a modal dialog; anything else is part of the page. */
    function applyModal() {
        const modal = isExpanded && narrow();
        if (modal === isModal)
            return;
        isModal = modal;
        if (modal) {
            node.setAttribute('role', 'dialog');
            node.setAttribute('aria-modal', 'true');
            node.setAttribute('aria-labelledby', 'chat-title');
            const host = [...document.body.children].find((el) => el.contains(node));
            for (const el of document.body.children) {
                if (el !== host && !el.inert && el.tagName !== 'SCRIPT') {
                    el.inert = true;
                    inerted.add(el);
                }
            }
        } else {
            node.removeAttribute('role');
            node.removeAttribute('aria-modal');
            node.removeAttribute('aria-labelledby');
            inerted.forEach((el) => {
                el.inert = false;
            });
            inerted.clear();
        }
    }

    function item(user) {
        let it = items.get(user.id);
        if (it)
            return it;
        const name = h('span', { class: 'chat-user-name', dir: 'auto' });
        const state = h('span', { class: 'chat-sr-only' });
        // the last message under the name; the time stays beside it
        const preview = h('span', { class: 'chat-user-preview', dir: 'auto', hidden: true });
        const typing = h('span', { class: 'chat-user-typing', hidden: true }, 'typing…');
        const last = h('span', { class: 'chat-user-last' });
        const count = badge(0, 'unread');
        const button = h('button', { type: 'button', class: 'chat-user-button', onclick: () => onOpen(user.id) },
            h('span', { class: 'chat-dot', 'aria-hidden': 'true' }),
            h('span', { class: 'chat-user-text' }, name, state, preview), typing, last, count);
        const li = h('li', { class: 'chat-user', 'data-user-id': user.id }, button);
        it = { li, button, name, state, preview, typing, last, lastAt: null, badge: count };
        items.set(user.id, it);
        return it;
    }

    /** Redraws the list from the store: contents in place, then the fewest moves to reach its order. */
    function update() {
        const users = store.sorted();
        const keep = new Set(users.map((u) => u.id));
        for (const [id, it] of items) {
            if (!keep.has(id)) {
                it.li.remove();
                items.delete(id);
            }
        }
        const focused = document.activeElement;
        users.forEach((user, i) => {
            const it = item(user);
            it.name.textContent = user.nickname;
            it.state.textContent = user.online ? ', online' : ', offline';
            it.li.dataset.online = String(user.online);
            if (it.lastAt !== user.lastAt) {
                it.lastAt = user.lastAt;
                replace(it.last, user.lastAt && [h('span', { class: 'chat-sr-only' }, ', last message '),
                    timeAgo(user.lastAt, { class: 'chat-user-time' })]);
            }
            if (it.preview.textContent !== (user.preview ?? '')) {
                it.preview.textContent = user.preview ?? '';
                it.preview.hidden = !user.preview;
            }
            setBadge(it.badge, user.unread, user.unread === 1 ? 'unread message' : 'unread messages');
            if (list.children[i] !== it.li)
                list.insertBefore(it.li, list.children[i] ?? null);
        });
        // moving a node drops its focus; give it back
        if (focused && focused !== document.activeElement && list.contains(focused))
            focused.focus();
        const hasMore = store.nextCursor() !== null;
        more.hidden = !hasMore;
        if (status.dataset.kind !== 'error') { // an error stays until its retry
            if (users.length === 0 && hasMore)
                setStatus(store.query() ? 'Searching…' : 'Loading members…');
            else if (users.length === 0)
                setStatus(store.query() ? `No member's nickname starts with “${store.query()}”.` : 'No other members yet.');
            else
                setStatus('');
        }
        // a page that did not fill the view: the next one at once
        if (hasMore && endInView)
            onMore();
        updateTotal();
        setCurrent(current);
    }

    function updateTotal() {
        const total = store.totalUnread() + otherUnread();
        setBadge(totalBadge, total, 'unread');
        document.dispatchEvent(new CustomEvent('forum:unread', { detail: total })); // for the tab's title (app.js)
    }

    function setCurrent(userId) {
        current = userId;
        for (const [id, it] of items)
            it.button.setAttribute('aria-current', id === userId ? 'true' : 'false');
        node.dataset.view = userId === null && !otherOpen ? 'list' : 'conversation';
    }

    function setExpanded(open, { focus = false } = {}) {
        if (open === isExpanded)
            return;
        isExpanded = open;
        node.dataset.expanded = String(open);
        toggle.setAttribute('aria-expanded', String(open));
        document.body.classList.toggle('chat-sheet-open', open);
        applyModal();
        if (focus)
            toggle.focus();
        onExpand(open);
    }

    /** A line above the list: loading, empty, or an error with a retry button (kind 'error'). */
    function setStatus(text, { kind = '', retry = null } = {}) {
        status.dataset.kind = kind;
        replace(status, text, retry && ' ', retry && h('button', { type: 'button', class: 'button button-quiet', onclick: retry }, 'Try again'));
        status.hidden = !text;
    }

    return {
        node,
        slot,
        update,
        updateTotal,
        setCurrent,
        setOtherOpen(open) {
            otherOpen = open;
            setCurrent(current);
        },
        setExpanded,
        /** The window crossed the narrow/wide line: the panel is a dialog or not. */
        layoutChanged: applyModal,
        setStatus,
        expanded: () => isExpanded,
        setTyping(userId, typing) {
            const it = items.get(userId);
            if (it)
                it.typing.hidden = !typing;
        },
        focusUser(userId) {
            items.get(userId)?.button.focus();
        },
        destroy() {
            isExpanded = false;
            applyModal();
            watchEnd.disconnect();
            clearTimeout(searchTimer);
        },
    };
}
