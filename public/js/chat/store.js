/*
 * The chat's state, with no DOM and no network: the other members in the order the server gives
 * them, their presence and unread counts, the messages waiting for the server's acknowledgement,
 * and the newest message id this page has seen (where the live connection resumes).
 *
 * The order is the server's (GET /api/users): members you exchanged messages with, the newest
 * conversation first, then everyone else by nickname A→Z without regard to case. The server sorts
 * conversations by their last message id; the list gives only its time, so equal times keep the
 * order they had (Array.prototype.sort is stable) unless both ids are known from live messages.
 */

/** Nicknames are ASCII, so lower-casing compares them as SQLite's NOCASE does. */
function byNickname(a, b) {
    const x = a.nickname.toLowerCase();
    const y = b.nickname.toLowerCase();
    if (x !== y)
        return x < y ? -1 : 1;
    return a.id - b.id;
}

function serverOrder(a, b) {
    if (a.lastAt && b.lastAt) {
        if (a.lastAt !== b.lastAt)
            return a.lastAt < b.lastAt ? 1 : -1; // ISO-8601 UTC strings sort as times
        return a.lastId !== null && b.lastId !== null ? b.lastId - a.lastId : 0;
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
    const users = new Map(); // id → {id, nickname, online, lastAt, lastId, unread}
    let order = [];
    let pending = [];        // {clientId, to, body, failed: null or the server's reason}, oldest first
    let lastId = null;       // null until the first hello
    const listeners = new Set();
    const emit = (what) => listeners.forEach((fn) => fn(what));

    const resort = () => {
        order = [...order].sort(serverOrder);
    };

    return {
        me,

        subscribe(fn) {
            listeners.add(fn);
            return () => listeners.delete(fn);
        },

        // --- members ---

        /** The list from GET /api/users, in its order; it replaces what the page knew. */
        setUsers(list) {
            users.clear();
            order = list.filter((u) => u.id !== me.id).map((u) => ({
                id: u.id,
                nickname: u.nickname,
                online: Boolean(u.online),
                lastAt: u.last_message_at ?? null,
                lastId: null,
                unread: u.unread ?? 0,
            }));
            for (const u of order)
                users.set(u.id, u);
            emit('users');
        },

        /** A member who registered (user.created): no messages yet, so placed by nickname. */
        addUser({ id, nickname }) {
            if (id === me.id || users.has(id))
                return;
            const u = { id, nickname, online: false, lastAt: null, lastId: null, unread: 0 };
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
