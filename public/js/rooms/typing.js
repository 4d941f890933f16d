/*
 * Who is typing in which room (room.typing frames), with the private chat's timing (chat/typing.js):
 * a typist is shown from an `active:true` until HIDE_MS after the last one, or until their
 * `active:false` or their message. The sentence for a room names one or two typists and counts no
 * further: "alice is typing…", "alice and bob are typing…", "several people are typing…".
 */
import { HIDE_MS } from '../chat/typing.js';

/** The sentence for these nicknames, in the order they started typing; '' for nobody. */
export function typingSentence(names) {
    if (names.length === 0)
        return '';
    if (names.length === 1)
        return `${names[0]} is typing…`;
    if (names.length === 2)
        return `${names[0]} and ${names[1]} are typing…`;
    return 'several people are typing…';
}

/** createRoomTyping(onChange): onChange(roomId) whenever the typists of that room change. */
export function createRoomTyping(onChange) {
    const rooms = new Map(); // roomId → Map userId → {nickname, timer}

    function set(roomId, user, active) {
        let typists = rooms.get(roomId);
        const was = typists?.get(user.id);
        if (!active && !was)
            return;
        clearTimeout(was?.timer);
        if (active) {
            if (!typists)
                rooms.set(roomId, typists = new Map());
            const timer = setTimeout(() => set(roomId, user, false), HIDE_MS);
            typists.set(user.id, { nickname: user.nickname, timer });
            if (was && was.nickname === user.nickname)
                return; // a refresh: nothing changes on screen
        } else {
            typists.delete(user.id);
            if (typists.size === 0)
                rooms.delete(roomId);
        }
        onChange(roomId);
    }

    return {
        set,
        /** The nicknames typing in roomId, in the order they started. */
        names: (roomId) => [...(rooms.get(roomId)?.values() ?? [])].map((t) => t.nickname),
        /** A user's last connection closed: they type nowhere any more. */
        forget(userId) {
            for (const [roomId, typists] of [...rooms]) {
                const t = typists.get(userId);
                if (t)
                    set(roomId, { id: userId, nickname: t.nickname }, false);
            }
        },
        clear() {
            for (const typists of rooms.values())
                typists.forEach((t) => clearTimeout(t.timer));
            rooms.clear();
        },
    };
}
