/*
 * Members who joined while this page has been open, newest first, as the live connection reports
 * them (user.created), with their presence when a presence frame tells it. Nothing is invented:
 * a member's `online` stays null (unknown) until the server says, and becomes unknown again after
 * a reconnect, when presence frames may have been missed.
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
            list = [{ id: user.id, nickname: user.nickname, joinedAt: new Date(), online: null }, ...list].slice(0, LIMIT);
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
