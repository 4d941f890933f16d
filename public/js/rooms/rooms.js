/*
 * The lobby and the public rooms in the chat panel: the rooms list, one open room in the chat's
 * slot (in place of a private conversation), typing both ways, read marks, and the room messages
 * waiting for the server.
 *
 * Room messages share the private messages' id sequence (API.md), so they move the same resume
 * mark (the chat store's seen()): a reconnect's ?after= covers both, and a message at or below the
 * mark is an echo already counted, never counted again. Every hello refetches GET /api/rooms (its
 * unread and mention counts, rooms created meanwhile) and sends again each message not yet
 * acknowledged, with its client_id, which the server stores once.
 */
import { api, errorOf, sentence } from '../api.js';
import { fieldText } from '../form.js';
import { createRoomsStore, LOBBY_ID } from './store.js';
import { createRoomsList } from './list.js';
import { createRoomView } from './room.js';
import { createRoomTyping, typingSentence } from './typing.js';
import { createTypingSender } from '../chat/typing.js';

const PAGE = 100; // rooms per page of GET /api/rooms (API.md's largest)

/** "in 3 seconds" for a wait in milliseconds, rounded up. */
function waitText(ms) {
    const s = Math.max(1, Math.ceil(Number(ms) / 1000));
    return `${s} second${s === 1 ? '' : 's'}`;
}

/**
 * mountRooms({socket, user, mark, slot, wide, shown, beforeOpen, setOpen, onAuthLost}):
 *   mark:       the chat store (hello/seen/lastId: the one resume point)
 *   slot:       where the open room goes (the chat's conversation slot)
 *   wide():     whether the layout is the desktop column (an opened room focuses its composer)
 *   shown():    whether the chat panel is in front of the reader (wide layout, or the panel open)
 *   beforeOpen(): closes what the slot holds (a private conversation) and opens the panel on phones
 *   setOpen(open): tells the chat frame whether a room is open (its list/conversation view)
 * Returns {node (the rooms list), open, close, totalUnread, subscribe, viewingChanged, stopTyping, destroy}.
 */
export function mountRooms({ socket, user, mark, slot, wide, shown, beforeOpen, setOpen, onAuthLost }) {
    const rooms = createRoomsStore({ id: user.id, nickname: user.nickname });
    let view = null;
    const drafts = new Map(); // room id → what was written there and not sent, kept while another room or conversation is open
    let gone = false;
    let arrivedDuringFetch = null; // messages that came while GET /api/rooms was on its way
    let fetchRun = 0;
    let moreRun = null;

    const list = createRoomsList({
        rooms,
        onOpen: (id) => open(id),
        onCreate: create,
        onMore: () => loadMore(),
    });
    const typingOut = createTypingSender((frame) => socket.send(frame), (room, active) => ({ type: 'room.typing', room, active }));
    const typingIn = createRoomTyping((roomId) => {
        const names = typingIn.names(roomId);
        list.setTyping(roomId, names.length > 0);
        if (view?.roomId === roomId)
            view.showTyping(typingSentence(names));
    });

    rooms.subscribe((what) => {
        if (what === 'rooms') {
            list.update();
            view?.drawRoom();
        } else {
            view?.renderPending();
        }
    });

    const viewing = (roomId) => view?.roomId === roomId && shown() && document.visibilityState === 'visible';

    function markRead(roomId, upTo) {
        const r = rooms.room(roomId);
        if (!r?.joined || !upTo)
            return;
        rooms.clearUnread(roomId);
        if (socket.send({ type: 'room.read', room: roomId, up_to: upTo }))
            return;
        api('POST', `/api/rooms/${roomId}/read`, { up_to: upTo }).then((res) => {
            if (res.status === 401 && !gone)
                onAuthLost();
        });
    }

    function sendFrame(item) {
        socket.send({ type: 'room.send', room: item.room, body: item.body, client_id: item.clientId });
    }

    /** Join or leave roomId; resolves to an error sentence, or null when done. */
    async function membership(roomId, join) {
        const res = await api('POST', `/api/rooms/${roomId}/${join ? 'join' : 'leave'}`);
        if (gone)
            return null;
        if (res.status === 200 && res.json?.room) {
            if (!join)
                typingOut.stop();
            rooms.upsert(res.json.room);
            return null;
        }
        if (res.status === 401)
            onAuthLost();
        return errorOf(res).message;
    }

    /** POST /api/rooms; resolves to null (the new room is open) or {message} for the form. */
    async function create(name) {
        const res = await api('POST', '/api/rooms', { name });
        if (gone)
            return null;
        if (res.status === 201 && res.json?.room) {
            rooms.upsert(res.json.room);
            open(res.json.room.id);
            return null;
        }
        if (res.status === 401)
            onAuthLost();
        const err = errorOf(res);
        if (res.status === 409)
            return { message: `A room named “${name}” already exists. Choose another name, or open that room from the list.` };
        // the server's fragment ("must not contain control characters") after the field's label
        if (res.status === 422 && err.field === 'name')
            return { message: fieldText('Room name', res.json?.error?.message, res.status) };
        return { message: err.message };
    }

    function open(roomId) {
        beforeOpen();
        if (view?.roomId === roomId) {
            view.focus(wide() ? 'input' : 'title');
            return;
        }
        close({ refocus: false });
        view = createRoomView({
            rooms,
            roomId,
            draft: drafts.get(roomId) ?? '',
            onSend(body) {
                typingOut.stop();
                sendFrame(rooms.queue(roomId, body));
            },
            onInput: (empty) => typingOut.input(roomId, empty),
            onBlur: () => typingOut.stop(),
            onJoin: () => membership(roomId, true),
            onLeave: () => membership(roomId, false),
            onClose: () => close({ refocus: true }),
            onRead: (upTo) => {
                if (viewing(roomId))
                    markRead(roomId, upTo);
            },
            escapeCloses: wide,
            onAuthLost,
        });
        slot.replaceChildren(view.node);
        list.setCurrent(roomId);
        setOpen(true);
        view.showTyping(typingSentence(typingIn.names(roomId)));
        const kept = rooms.takeRefused(roomId);
        if (kept)
            view.refused(kept, kept.reason);
        view.focus(wide() ? 'input' : 'title');
    }

    function close({ refocus }) {
        if (!view)
            return;
        const roomId = view.roomId;
        typingOut.stop();
        const draft = view.draft();
        if (draft.trim())
            drafts.set(roomId, draft);
        else
            drafts.delete(roomId);
        view.destroy();
        view.node.remove();
        view = null;
        list.setCurrent(null);
        setOpen(false);
        if (refocus)
            list.focusRoom(roomId);
    }

    /** The panel opened, the window came back: the open room's end, if in view, is read now. */
    function viewingChanged() {
        if (view && viewing(view.roomId))
            view.viewed();
    }

    async function loadRooms() {
        const run = ++fetchRun;
        moreRun = null;
        arrivedDuringFetch ??= [];
        const res = await api('GET', `/api/rooms?limit=${PAGE}`);
        if (gone || run !== fetchRun)
            return;
        const arrived = arrivedDuringFetch;
        arrivedDuringFetch = null;
        // no rooms plugin on this server (it may come with a later swap): no rooms section
        list.node.hidden = res.status === 404;
        if (res.status === 404)
            return;
        if (res.status === 200 && Array.isArray(res.json?.rooms)) {
            list.setStatus('');
            rooms.setRooms(res.json.rooms, res.json.next ?? null);
            for (const { message, unread } of arrived) {
                const r = rooms.room(message.room);
                // the answer counts what was stored before it was made; later messages count again
                if (r && (r.lastId === null || message.id > r.lastId))
                    rooms.messageArrived(message, { unread });
            }
            viewingChanged();
            return;
        }
        if (res.status === 401) {
            onAuthLost();
            return;
        }
        list.setStatus('The rooms could not be loaded.', { kind: 'error', retry: () => loadRooms() });
    }

    async function loadMore() {
        const cursor = rooms.nextCursor();
        if (cursor === null || moreRun !== null || arrivedDuringFetch)
            return;
        const run = moreRun = fetchRun;
        const res = await api('GET', `/api/rooms?limit=${PAGE}&before=${encodeURIComponent(cursor)}`);
        if (gone || run !== fetchRun || moreRun !== run)
            return;
        moreRun = null;
        if (res.status === 200 && Array.isArray(res.json?.rooms)) {
            rooms.appendRooms(res.json.rooms, res.json.next ?? null);
            return;
        }
        if (res.status === 401)
            onAuthLost();
        else
            list.setStatus('More rooms could not be loaded.', { kind: 'error', retry: () => { list.setStatus(''); loadMore(); } });
    }

    function onHello(frame) {
        if (frame.user && frame.user.id !== user.id)
            return;
        loadRooms();
        rooms.unsent().forEach(sendFrame);
    }

    function onMessage(m) {
        if (!m || typeof m.id !== 'number' || typeof m.room !== 'number')
            return;
        const mine = m.from?.id === user.id;
        if (mine && m.client_id)
            rooms.acknowledge(m.client_id);
        const fresh = mark.seen(m.id);
        // read only when shown: the room in front of the reader and its log at the end
        const inView = view?.roomId === m.room && view.add(m);
        if (!fresh)
            return; // at or below the resume mark: shown (or counted) already
        if (!mine && m.from)
            typingIn.set(m.room, m.from, false);
        const unread = !(inView && viewing(m.room));
        const known = rooms.messageArrived(m, { unread });
        if (!known && !arrivedDuringFetch)
            loadRooms(); // a room this page has not heard of (joined in another tab)
        arrivedDuringFetch?.push({ message: m, unread });
        if (known && unread && !mine && Array.isArray(m.mentions) && m.mentions.includes(user.id))
            list.say(`${m.from?.nickname ?? 'Someone'} mentioned you in ${rooms.room(m.room).name}.`);
    }

    function onError(frame) {
        if (typeof frame.ref !== 'string')
            return;
        const item = rooms.take(frame.ref);
        if (!item)
            return; // not a room message of ours (a private one, or a typing frame)
        let reason;
        if (frame.code === 'rate_limited') {
            reason = Number.isFinite(Number(frame.retry_after_ms)) && frame.retry_after_ms !== undefined
                ? `You are sending messages too fast. Your message was not sent: try again in ${waitText(frame.retry_after_ms)}.`
                : 'You are sending messages too fast. Your message was not sent: try again in a moment.';
        } else if (frame.code === 'forbidden') {
            reason = `You are not a member of ${rooms.room(item.room)?.name ?? 'this room'}, so your message was not sent.`;
            loadRooms(); // the membership changed behind this page's back
        } else {
            reason = `Your message was not sent. ${sentence(frame.message || 'The server refused it.')}`;
        }
        if (view?.roomId === item.room) {
            view.refused(item, reason);
            return;
        }
        // another room is open now: the text waits for its own room's composer
        rooms.keepRefused(item.room, item.body, reason);
        list.say(`Your message to ${rooms.room(item.room)?.name ?? 'a room'} was not sent; it is back in that room's composer.`);
    }

    const unsubscribe = [
        socket.on('hello', onHello),
        socket.on('room.message', (frame) => onMessage(frame.message)),
        socket.on('room.typing', (frame) => {
            if (typeof frame.room === 'number' && frame.from && typeof frame.from.id === 'number' && frame.from.id !== user.id)
                typingIn.set(frame.room, frame.from, frame.active === true);
        }),
        socket.on('room.created', (frame) => {
            if (frame.room && typeof frame.room.id === 'number')
                rooms.upsert(frame.room, { broadcast: true });
        }),
        socket.on('room.member', (frame) => {
            if (typeof frame.room === 'number')
                rooms.member(frame);
            if (frame.user?.id === user.id && frame.joined === true && !rooms.room(frame.room))
                loadRooms();
        }),
        socket.on('presence', (frame) => {
            if (frame.online !== true)
                typingIn.forget(frame.user_id);
        }),
        socket.on('error', onError),
    ];

    return {
        node: list.node,
        open,
        close,
        viewingChanged,
        stopTyping: () => typingOut.stop(),
        totalUnread: () => rooms.totalUnread(),
        subscribe: (fn) => rooms.subscribe(fn),
        lobby: () => rooms.room(LOBBY_ID),
        destroy() {
            gone = true;
            unsubscribe.forEach((off) => off());
            typingOut.stop();
            typingIn.clear();
            view?.destroy();
            view = null;
        },
    };
}
