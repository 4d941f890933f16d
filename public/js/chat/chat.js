/*
 * The chat, mounted in the shell's <aside> while someone is signed in: the rooms list (rooms/), the
 * members list, one open conversation or room, typing both ways, notices, and the messages waiting
 * for the server.
 *
 * Nothing is lost or doubled across reconnects (API.md): the first connection starts from the
 * hello's last_message_id, every message frame (private or room: one id sequence) moves the mark on,
 * and socketParams() gives the next connection ?after=mark, so the server replays what was missed
 * (rooms/rooms.js moves the same mark for room messages). A reconnect keeps its own mark
 * rather than the new hello's, which is only reached once the replay has arrived. Every hello
 * refetches GET /api/users (presence, unread and user.created frames may have been missed), and
 * sends again each message not yet acknowledged, with its client_id, which the server stores once.
 *
 * GET /api/users comes in pages: the first is fetched again as large as the list already loaded
 * (so a refetch keeps what the reader scrolled to), later ones follow the server's cursor when the
 * list's end comes into view. A search asks for the first page of its own list.
 */
import { replace } from '../dom.js';
import { api, sentence } from '../api.js';
import { createChatStore } from './store.js';
import { createSidebar } from './sidebar.js';
import { createConversation } from './conversation.js';
import { createTypingSender, createTypingWatch } from './typing.js';
import { createNotices } from './notices.js';
import { mountRooms } from '../rooms/rooms.js';

// the sidebar layout in chat.css starts at this width (700 px: two windows side by side on one
// screen); below it the chat is a panel that opens
const WIDE = '(min-width: 43.75rem)';
// members per page of GET /api/users, and the most a refetch of the first page asks for (API.md's limit)
const PAGE = 50;
const PAGE_MAX = 200;

/**
 * mountChat({aside, socket, user, onAuthLost}) fills aside for user ({id, nickname}) and listens
 * to socket (a LiveSocket). Returns {userId, socketParams, destroy}.
 */
export function mountChat({ aside, socket, user, onAuthLost }) {
    const store = createChatStore({ id: user.id, nickname: user.nickname });
    const wide = matchMedia(WIDE);
    let conversation = null;
    let gone = false;
    // while GET /api/users is on its way: the messages that arrived meanwhile, to count again
    // those the answer does not include yet
    let arrivedDuringFetch = null;
    let fetchRun = 0;
    let moreRun = null; // the fetchRun a next-page request belongs to, while one is on its way
    let searchText = '';
    const drafts = new Map(); // peer id → what was written to them and not sent, kept while another conversation is open

    // the rooms list sits above the members; an open room takes the conversation's slot
    const roomsNode = document.createElement('div');
    roomsNode.className = 'chat-rooms-slot';
    let rooms = null;
    const sidebar = createSidebar({
        store,
        above: roomsNode,
        otherUnread: () => rooms?.totalUnread() ?? 0,
        onOpen: (id) => open(id),
        onExpand: () => viewingChanged(),
        onSearch: (text) => {
            if (text === searchText)
                return;
            searchText = text;
            loadUsers({ fresh: true });
        },
        onMore: () => loadMore(),
        narrow: () => !wide.matches,
    });
    const notices = createNotices((id) => open(id));
    const typingOut = createTypingSender((frame) => socket.send(frame));
    const typingIn = createTypingWatch((userId, active) => {
        sidebar.setTyping(userId, active);
        if (conversation?.peerId === userId)
            conversation.showTyping(active);
    });

    store.subscribe((what) => {
        if (what === 'users') {
            sidebar.update();
            conversation?.drawPeer();
        } else {
            conversation?.renderPending();
        }
    });

    /** Whether the conversation with peerId is in front of the reader right now. */
    function viewing(peerId) {
        return conversation?.peerId === peerId && (wide.matches || sidebar.expanded()) && document.visibilityState === 'visible';
    }

    /** Read up to upTo with peerId, stillUnread of their messages after it. */
    function markRead(peerId, upTo, stillUnread = 0) {
        store.setUnread(peerId, stillUnread);
        if (!upTo)
            return;
        if (socket.send({ type: 'read', with: peerId, up_to: upTo }))
            return;
        api('POST', `/api/messages/${peerId}/read`, { up_to: upTo }).then((res) => {
            if (res.status === 401 && !gone)
                onAuthLost();
        });
    }

    /** The panel opened, the window came back, the layout changed: what is on screen now is read. */
    function viewingChanged() {
        rooms?.viewingChanged();
        if (conversation && viewing(conversation.peerId))
            conversation.viewed();
    }

    function sendFrame(item) {
        socket.send({ type: 'message.send', to: item.to, body: item.body, client_id: item.clientId });
    }

    function open(peerId) {
        if (!wide.matches)
            sidebar.setExpanded(true);
        if (conversation?.peerId === peerId) {
            conversation.focus(wide.matches ? 'input' : 'title');
            return;
        }
        rooms.close({ refocus: false });
        close({ refocus: false });
        notices.dismiss(peerId);
        conversation = createConversation({
            store,
            peerId,
            unread: store.user(peerId)?.unread ?? 0,
            draft: drafts.get(peerId) ?? '',
            onSend(body) {
                typingOut.stop();
                sendFrame(store.queue(peerId, body));
            },
            onInput: (empty) => typingOut.input(peerId, empty),
            onBlur: () => typingOut.stop(),
            onRetry: (clientId) => {
                const item = store.retry(clientId);
                if (item)
                    sendFrame(item);
            },
            onDiscard: (clientId) => store.discard(clientId),
            onClose: () => close({ refocus: true }),
            onRead: (upTo, stillUnread) => {
                if (!viewing(peerId))
                    return false;
                markRead(peerId, upTo, stillUnread);
                return true;
            },
            escapeCloses: () => wide.matches,
            onAuthLost,
        });
        replace(sidebar.slot, conversation.node);
        sidebar.setCurrent(peerId);
        conversation.showTyping(typingIn.isTyping(peerId));
        conversation.focus(wide.matches ? 'input' : 'title');
    }

    function close({ refocus }) {
        if (!conversation)
            return;
        const peerId = conversation.peerId;
        typingOut.stop();
        const draft = conversation.draft();
        if (draft.trim())
            drafts.set(peerId, draft);
        else
            drafts.delete(peerId);
        conversation.destroy();
        conversation.node.remove();
        conversation = null;
        sidebar.setCurrent(null);
        if (refocus)
            sidebar.focusUser(peerId);
    }

    function usersPath(limit, after) {
        const params = new URLSearchParams({ limit: String(limit) });
        if (searchText)
            params.set('q', searchText);
        if (after)
            params.set('after', after);
        return `/api/users?${params}`;
    }

    /** The first page again (as many members as are loaded, for a refetch; one page for a new search). */
    async function loadUsers({ fresh = false } = {}) {
        const run = ++fetchRun;
        moreRun = null;
        arrivedDuringFetch ??= [];
        const loaded = fresh ? 0 : store.sorted().length;
        if (fresh || !loaded)
            sidebar.setStatus(searchText ? 'Searching…' : 'Loading members…');
        const res = await api('GET', usersPath(Math.min(Math.max(loaded, PAGE), PAGE_MAX)));
        if (gone || run !== fetchRun)
            return; // a newer hello or search asked again; its answer counts
        const arrived = arrivedDuringFetch;
        arrivedDuringFetch = null;
        if (res.status === 200 && Array.isArray(res.json?.users)) {
            sidebar.setStatus('');
            store.setUsers(res.json.users, { next: res.json.next ?? null, q: searchText });
            for (const { message, unread, unknown } of arrived) {
                const other = store.user(message.from === user.id ? message.to : message.from);
                // the answer counts every message stored before it was made; later ones count again
                if (other && (other.lastId === null || message.id > other.lastId))
                    store.conversationMoved(message, { unread });
                if (other && unknown && unread && message.from !== user.id)
                    notices.show(other, message.body);
            }
            viewingChanged();
            return;
        }
        if (res.status === 401) {
            onAuthLost();
            return;
        }
        sidebar.setStatus('The members list could not be loaded.', { kind: 'error', retry: () => loadUsers() });
    }

    /** The page after those loaded, once at a time; dropped when the first page is asked again meanwhile. */
    async function loadMore() {
        const cursor = store.nextCursor();
        if (cursor === null || moreRun !== null || arrivedDuringFetch)
            return;
        const run = moreRun = fetchRun;
        const res = await api('GET', usersPath(PAGE, cursor));
        if (gone || run !== fetchRun || moreRun !== run)
            return;
        moreRun = null;
        if (res.status === 200 && Array.isArray(res.json?.users)) {
            store.appendUsers(res.json.users, res.json.next ?? null);
            return;
        }
        if (res.status === 401) {
            onAuthLost();
            return;
        }
        sidebar.setStatus('More members could not be loaded.', { kind: 'error', retry: () => { sidebar.setStatus(''); loadMore(); } });
    }

    function onHello(frame) {
        if (frame.user && frame.user.id !== user.id)
            return; // another account signed in in this browser: app.js mounts a new chat for it
        store.hello(frame.last_message_id);
        loadUsers();
        store.unsent().forEach(sendFrame);
    }

    function onMessage(m) {
        if (!m || typeof m.id !== 'number')
            return;
        const otherId = m.from === user.id ? m.to : m.from;
        if (m.from === user.id && m.client_id)
            store.acknowledge(m.client_id);
        const fresh = store.seen(m.id);
        const inView = conversation?.peerId === otherId && conversation.add(m);
        if (!fresh)
            return; // seen before: an acknowledgement repeated for a message sent again
        if (m.from === otherId)
            typingIn.set(otherId, false);
        // counted unread unless it reached the reader's eyes (conversation.add reported it read then)
        const unread = !(inView && viewing(otherId));
        const known = store.conversationMoved(m, { unread });
        if (!known && !arrivedDuringFetch)
            loadUsers(); // a member this page has not heard of: ask for the list again
        arrivedDuringFetch?.push({ message: m, unread, unknown: !known });
        if (known && unread && m.from === otherId)
            notices.show(store.user(otherId), m.body);
    }

    function onError(frame) {
        if (typeof frame.ref === 'string' && store.fail(frame.ref, sentence(frame.message || 'The server refused it.')))
            return;
        // other refusals (a typing or read frame) change nothing the reader needs to know
    }

    // mounted after the chat's own handlers, so a hello reaches store.hello() first
    rooms = mountRooms({
        socket,
        user,
        mark: store,
        slot: sidebar.slot,
        wide: () => wide.matches,
        shown: () => wide.matches || sidebar.expanded(),
        beforeOpen: () => {
            if (!wide.matches)
                sidebar.setExpanded(true);
            close({ refocus: false });
        },
        setOpen: (open) => sidebar.setOtherOpen(open),
        onAuthLost,
    });
    roomsNode.replaceWith(rooms.node);
    rooms.subscribe(() => sidebar.updateTotal());

    const onVisibility = () => {
        if (document.visibilityState === 'hidden') {
            typingOut.stop();
            rooms.stopTyping();
        }
        viewingChanged();
    };
    const onWide = () => {
        sidebar.layoutChanged();
        viewingChanged();
    };

    const unsubscribe = [
        socket.on('hello', onHello),
        socket.on('message', (frame) => onMessage(frame.message)),
        socket.on('typing', (frame) => {
            if (typeof frame.from === 'number' && frame.from !== user.id)
                typingIn.set(frame.from, frame.active === true);
        }),
        socket.on('presence', (frame) => {
            store.setPresence(frame.user_id, frame.online === true);
            if (frame.online !== true)
                typingIn.set(frame.user_id, false);
        }),
        socket.on('user.created', (frame) => {
            if (frame.user)
                store.addUser(frame.user);
        }),
        socket.on('error', onError),
    ];
    document.addEventListener('visibilitychange', onVisibility);
    wide.addEventListener('change', onWide);

    replace(aside, sidebar.node, notices.node);
    aside.setAttribute('aria-labelledby', 'chat-title');
    aside.hidden = false;
    document.body.classList.add('with-chat');

    return {
        userId: user.id,
        /** The query of the next connection: resume after the newest message seen, once there is a mark. */
        socketParams() {
            const id = store.lastId();
            return id === null ? {} : { after: id };
        },
        destroy() {
            gone = true;
            unsubscribe.forEach((off) => off());
            document.removeEventListener('visibilitychange', onVisibility);
            wide.removeEventListener('change', onWide);
            typingOut.stop();
            typingIn.clear();
            notices.clear();
            rooms.destroy();
            conversation?.destroy();
            conversation = null;
            sidebar.destroy();
            replace(aside);
            aside.hidden = true;
            aside.removeAttribute('aria-labelledby');
            document.body.classList.remove('with-chat', 'chat-sheet-open');
        },
    };
}
