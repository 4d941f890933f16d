/*
 * The chat's state, with no DOM and no network: the other members in the order the server gives
 * them, their presence and unread counts, the messages waiting for the server's acknowledgement,
 * and the newest message id this page has seen (where the live connection resumes).
 *
 * The order is the server's (GET /api/users): members you exchanged messages with, the newest
 * conversation first, then everyone else by nickname A→Z without regard to case. The server sorts
 * conversations by their last message id, which each row carries.
 *
 * The list comes in pages, and may be narrowed to the nicknames that start with a search text: the
 * store holds the pages loaded so far for one search ('' for everyone) and the cursor of the next.
 * A member who appears meanwhile (user.created) is placed only where the loaded pages reach; past
 * them, a later page brings them.
 */

/** SQLite's NOCASE: ASCII letters fold, every other character compares as it is. */
const fold = (s) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

// the members list's preview of a conversation's last message: its first 80 characters (code points,
// as GET /api/users cuts last_message_preview), so a live message reads as a reload would show it
const PREVIEW_CHARS = 80;
const preview = (body) => (typeof body === 'string' ? Array.from(body).slice(0, PREVIEW_CHARS).join('') : null);

function byNickname(a, b) {
    const x = fold(a.nickname);
    const y = fold(b.nickname);
    if (x !== y)
        return x < y ? -1 : 1;
    return a.id - b.id;
}

function serverOrder(a, b) {
    if (a.lastAt && b.lastAt) {
        if (a.lastId !== null && b.lastId !== null && a.lastId !== b.lastId)
            return b.lastId - a.lastId;
        if (a.lastAt !== b.lastAt)
            return a.lastAt < b.lastAt ? 1 : -1; // ISO-8601 UTC strings sort as times
        return 0;
    }
    if (a.lastAt || b.lastAt)
        return a.lastAt ? -1 : 1;
    return byNickname(a, b);
}

/** An id for message.send that is never reused: crypto.randomUUID() where the page is a secure context. */
export function newClientId() {
    if (typeof crypto.randomUUID === 'function')
        return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * createChatStore(me) for the signed-in user me ({id, nickname}). subscribe(fn) calls fn(what) on
 * every change, what being 'users' (the list, presence, unread) or 'pending' (the unacknowledged
 * messages).
 */
export function createChatStore(me) {
    const users = new Map(); // id → {id, nickname, online, lastAt, lastId, preview, unread}
    let order = [];
    let query = '';          // the search the loaded pages answer ('' for everyone)
    let next = null;         // the cursor of the next page, null once every page is loaded
    let pending = [];        // {clientId, to, body, failed: null or the server's reason}, oldest first
    let lastId = null;       // null until the first hello
    const listeners = new Set();
    const emit = (what) => listeners.forEach((fn) => fn(what));

    const resort = () => {
        order = [...order].sort(serverOrder);
    };

    /** Rows of GET /api/users not known yet, appended in their order. */
    const addRows = (list) => {
        for (const r of list) {
            if (r.id === me.id || users.has(r.id))
                continue;
            const u = {
                id: r.id,
                nickname: r.nickname,
                online: Boolean(r.online),
                lastAt: r.last_message_at ?? null,
                lastId: r.last_message_id ?? null,
                preview: r.last_message_preview ?? null,
                unread: r.unread ?? 0,
            };
            users.set(u.id, u);
            order.push(u);
        }
    };

    return {
        me,

        subscribe(fn) {
            listeners.add(fn);
            return () => listeners.delete(fn);
        },

        // --- members ---

        /** The first page of GET /api/users for `q`, with its cursor; it replaces what the page knew. */
        setUsers(list, { next: cursor = null, q = '' } = {}) {
            users.clear();
            order = [];
            query = q;
            next = cursor;
            addRows(list);
            emit('users');
        },

        /** A further page (its users after those loaded), with the cursor of the one after it. */
        appendUsers(list, cursor) {
            next = cursor ?? null;
            addRows(list);
            resort();
            emit('users');
        },

        query: () => query,
        /** The cursor of the next page, or null when everything is loaded. */
        nextCursor: () => next,
        matches: (nickname) => fold(nickname).startsWith(fold(query)),

        /** A member who registered (user.created): no messages yet, so placed by nickname. */
        addUser({ id, nickname }) {
            if (id === me.id || users.has(id) || typeof nickname !== 'string' || !fold(nickname).startsWith(fold(query)))
                return;
            const u = { id, nickname, online: false, lastAt: null, lastId: null, preview: null, unread: 0 };
            if (next !== null) {
                // past the loaded pages: the page that holds them brings them
                const last = order.findLast((o) => o.lastAt === null);
                if (!last || byNickname(u, last) > 0)
                    return;
            }
            users.set(id, u);
            order.push(u);
            resort();
            emit('users');
        },

        setPresence(id, online) {
            const u = users.get(id);
            if (!u || u.online === online)
                return;
            u.online = online;
            emit('users');
        },

        user: (id) => users.get(id) ?? null,
        sorted: () => order,
        totalUnread: () => order.reduce((sum, u) => sum + u.unread, 0),

        /**
         * A message to or from me moves its conversation to the top; one from the other member
         * counts as unread unless unread is false (the conversation is on screen). Returns false for a
         * member the page does not know.
         */
        conversationMoved(message, { unread }) {
            const u = users.get(message.from === me.id ? message.to : message.from);
            if (!u)
                return false;
            u.lastAt = message.created_at;
            u.lastId = message.id;
            u.preview = preview(message.body);
            if (unread && message.from !== me.id)
                u.unread += 1;
            resort();
            emit('users');
            return true;
        },

        clearUnread(id) {
            const u = users.get(id);
            if (!u || u.unread === 0)
                return;
            u.unread = 0;
            emit('users');
        },

        /** What is still unread with id once part of the conversation has been read. */
        setUnread(id, count) {
            const u = users.get(id);
            if (!u || u.unread === count)
                return;
            u.unread = Math.max(0, count);
            emit('users');
        },

        // --- where the live connection resumes ---

        /** hello: the first connection starts from the server's newest id; a reconnect keeps its own. */
        hello(lastMessageId) {
            if (lastId === null)
                lastId = Number(lastMessageId) || 0;
        },

        /** Records a message id; returns true when it is newer than every message seen so far. */
        seen(id) {
            if (lastId !== null && id <= lastId)
                return false;
            lastId = id;
            return true;
        },

        lastId: () => lastId,

        // --- messages waiting for their acknowledgement ---

        queue(to, body) {
            const item = { clientId: newClientId(), to, body, failed: null };
            pending = [...pending, item];
            emit('pending');
            return item;
        },

        /** The sender's copy came back with this client_id: the pending item is done. */
        acknowledge(clientId) {
            const before = pending.length;
            pending = pending.filter((p) => p.clientId !== clientId);
            if (pending.length !== before)
                emit('pending');
        },

        fail(clientId, reason) {
            const item = pending.find((p) => p.clientId === clientId);
            if (!item)
                return null;
            item.failed = reason;
            emit('pending');
            return item;
        },

        /** A failed item goes back to waiting, with the same client_id, so it can never be stored twice. */
        retry(clientId) {
            const item = pending.find((p) => p.clientId === clientId);
            if (item)
                item.failed = null;
            emit('pending');
            return item ?? null;
        },

        discard(clientId) {
            pending = pending.filter((p) => p.clientId !== clientId);
            emit('pending');
        },

        pendingFor: (userId) => pending.filter((p) => p.to === userId),
        /** What to send (again) when the connection is back: everything not refused. */
        unsent: () => pending.filter((p) => !p.failed),
    };
}
