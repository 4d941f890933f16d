/*
 * Members who joined while this page has been open, newest first, as the live connection reports
 * them (user.created), with their presence. A member who has just registered has no connection
 * yet (their page connects after the registration that announced them), so they start offline, as
 * the chat's list shows them, and presence frames say when that changes. After a reconnect, when
 * presence frames may have been missed, their presence is unknown (null) until the server says.
 */
const LIMIT = 20;

export function createMembers() {
    let list = [];
    const listeners = new Set();
    const changed = () => listeners.forEach((fn) => fn(list));

    return {
        /** {id, nickname} from user.created. */
        joined(user) {
            if (list.some((m) => m.id === user.id))
                return;
            list = [{ id: user.id, nickname: user.nickname, joinedAt: new Date(), online: false }, ...list].slice(0, LIMIT);
            changed();
        },
        presence(userId, online) {
            if (!list.some((m) => m.id === userId))
                return;
            list = list.map((m) => (m.id === userId ? { ...m, online } : m));
            changed();
        },
        forgetPresence() {
            list = list.map((m) => ({ ...m, online: null }));
            changed();
        },
        clear() {
            list = [];
            changed();
        },
        /** Calls fn(list) now and on every change; returns the function that unsubscribes. */
        subscribe(fn) {
            listeners.add(fn);
            fn(list);
            return () => listeners.delete(fn);
        },
    };
}
