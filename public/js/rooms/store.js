/*
 * The rooms' state, with no DOM and no network: every room the page knows in the server's order,
 * their member counts, unread and mention counts, and the room messages waiting for the server's
 * acknowledgement.
 *
 * The order is API.md's: the lobby first, then the rooms this member joined by latest message, then
 * the others by latest message. Live frames move a room (a message in it) or add one (room.created),
 * so the page sorts again with the same rule; rooms without a message come last in each group,
 * the newest room first. A room this member has not joined sends no messages here, so its place
 * is as fresh as the last list the server gave.
 */
import { newClientId } from '../chat/store.js';

export const LOBBY_ID = 1;

function serverOrder(a, b) {
    if ((a.id === LOBBY_ID) !== (b.id === LOBBY_ID))
        return a.id === LOBBY_ID ? -1 : 1;
    if (a.joined !== b.joined)
        return a.joined ? -1 : 1;
    if (a.lastId !== b.lastId) {
        if (a.lastId === null || b.lastId === null)
            return a.lastId === null ? 1 : -1;
        return b.lastId - a.lastId;
    }
    return b.id - a.id;
}

/** A room of the API (GET /api/rooms, a join or leave answer, room.created) as the page keeps it. */
function fromServer(r) {
    return {
        id: r.id,
        name: String(r.name ?? ''),
        createdBy: r.created_by ?? null,
        memberCount: Number(r.member_count) || 0,
        lastId: r.last_message_id ?? null,
        joined: r.id === LOBBY_ID || r.joined === true,
        unread: Number(r.unread) || 0,
        mentions: Number(r.mentions) || 0,
    };
}

/**
 * createRoomsStore(me) for the signed-in user me ({id, nickname}). subscribe(fn) calls fn(what) on
 * every change, what being 'rooms' (the list, counts, membership) or 'pending'.
 */
export function createRoomsStore(me) {
    const rooms = new Map(); // id → room as fromServer() makes it
    let order = [];
    let next = null;         // the cursor of the next page of GET /api/rooms, null when all are loaded
    let pending = [];        // {clientId, room, body}, oldest first
    const refusedText = new Map(); // roomId → {body, reason}: refused while the room was not open
    const listeners = new Set();
    const emit = (what) => listeners.forEach((fn) => fn(what));
    const resort = () => {
        order = [...rooms.values()].sort(serverOrder);
    };

    return {
        me,

        subscribe(fn) {
            listeners.add(fn);
            return () => listeners.delete(fn);
        },

        /** The first page of GET /api/rooms: it replaces what the page knew. */
        setRooms(list, cursor) {
            rooms.clear();
            for (const r of list)
                rooms.set(r.id, fromServer(r));
            next = cursor ?? null;
            resort();
            emit('rooms');
        },

        /** A further page. */
        appendRooms(list, cursor) {
            for (const r of list) {
                if (!rooms.has(r.id))
                    rooms.set(r.id, fromServer(r));
            }
            next = cursor ?? null;
            resort();
            emit('rooms');
        },

        nextCursor: () => next,

        /**
         * A room the server describes for this member (a join, a leave, a creation): its counts and
         * membership as given. From room.created, sent alike to everyone, only the name and the
         * count are news: the creator is the one member.
         */
        upsert(r, { broadcast = false } = {}) {
            const room = fromServer(r);
            const known = rooms.get(room.id);
            if (broadcast) {
                room.joined = known ? known.joined : room.createdBy?.id === me.id;
                room.unread = known?.unread ?? 0;
                room.mentions = known?.mentions ?? 0;
                room.lastId = known?.lastId ?? room.lastId;
            }
            rooms.set(room.id, known ? Object.assign(known, room) : room);
            resort();
            emit('rooms');
            return rooms.get(room.id);
        },

        /** room.member: someone joined or left; when it is this member (another tab), the membership too. */
        member({ room, user, joined, member_count: count }) {
            const r = rooms.get(room);
            if (!r)
                return false;
            if (Number.isInteger(count))
                r.memberCount = count;
            if (user?.id === me.id && r.id !== LOBBY_ID) {
                r.joined = joined === true;
                if (!r.joined) {
                    r.unread = 0;
                    r.mentions = 0;
                }
            }
            resort();
            emit('rooms');
            return true;
        },

        room: (id) => rooms.get(id) ?? null,
        sorted: () => order,
        totalUnread: () => order.reduce((sum, r) => sum + (r.joined ? r.unread : 0), 0),

        /**
         * A message in a room moves it up; from someone else it counts as unread (and as a mention
         * when it names me) unless unread is false (the room is on screen). Returns false for a room
         * the page does not know.
         */
        messageArrived(m, { unread }) {
            const r = rooms.get(m.room);
            if (!r)
                return false;
            if (r.lastId === null || m.id > r.lastId)
                r.lastId = m.id;
            if (unread && m.from?.id !== me.id) {
                r.unread += 1;
                if (Array.isArray(m.mentions) && m.mentions.includes(me.id))
                    r.mentions += 1;
            }
            resort();
            emit('rooms');
            return true;
        },

        clearUnread(id) {
            const r = rooms.get(id);
            if (!r || (r.unread === 0 && r.mentions === 0))
                return;
            r.unread = 0;
            r.mentions = 0;
            emit('rooms');
        },

        // --- messages waiting for their acknowledgement ---

        queue(room, body) {
            const item = { clientId: newClientId(), room, body };
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

        /** A refused message leaves the queue; returns it (its text goes back to the composer), or null. */
        take(clientId) {
            const item = pending.find((p) => p.clientId === clientId) ?? null;
            if (item) {
                pending = pending.filter((p) => p !== item);
                emit('pending');
            }
            return item;
        },

        /** Keeps a refused message's text for when its room is opened (after any kept before it). */
        keepRefused(room, body, reason) {
            const before = refusedText.get(room)?.body;
            refusedText.set(room, { body: before ? `${before}\n${body}` : body, reason });
        },

        /** The text kept for room, once: {body, reason} or null. */
        takeRefused(room) {
            const kept = refusedText.get(room) ?? null;
            refusedText.delete(room);
            return kept;
        },

        pendingFor: (room) => pending.filter((p) => p.room === room),
        /** What to send (again) when the connection is back, with the same client_ids. */
        unsent: () => pending,
    };
}
