/*
 * Typing, both ways, with API.md's timing. Ours: `active:true` at most every REFRESH_MS while the
 * user types, `active:false` after IDLE_MS without a keystroke, on blur and on send. Theirs: shown
 * from an `active:true` until HIDE_MS after the last one, or at once on `active:false` or on a
 * message from them. A typist who keeps typing refreshes well inside HIDE_MS, so the indicator
 * stays up without flickering.
 */
export const REFRESH_MS = 3_000;
export const IDLE_MS = 5_000;
export const HIDE_MS = 6_000;

/**
 * Our side. send(frame) hands a frame to the live connection and returns whether it could; a frame
 * that could not go is simply not counted as sent, so the next keystroke tries again. frameOf(to,
 * active) builds the frame: a private `typing` unless a room's is given.
 */
export function createTypingSender(send, frameOf = (to, active) => ({ type: 'typing', to, active })) {
    let to = null;        // whom the last `active:true` went to
    let active = false;
    let sentAt = 0;
    let idleTimer = 0;

    function stop() {
        clearTimeout(idleTimer);
        if (active && to !== null)
            send(frameOf(to, false));
        active = false;
    }

    return {
        /** A keystroke in the composer for a conversation with peer; empty: the text was cleared. */
        input(peer, empty) {
            if (to !== peer)
                stop();
            to = peer;
            if (empty) {
                stop();
                return;
            }
            const now = Date.now();
            if ((!active || now - sentAt >= REFRESH_MS) && send(frameOf(peer, true))) {
                active = true;
                sentAt = now;
            }
            clearTimeout(idleTimer);
            idleTimer = setTimeout(stop, IDLE_MS);
        },
        stop,
    };
}

/** Their side: who is typing to us right now. onChange(userId, typing) on every change. */
export function createTypingWatch(onChange) {
    const timers = new Map(); // userId → the timer that hides them

    function set(userId, typing) {
        const was = timers.has(userId);
        clearTimeout(timers.get(userId));
        timers.delete(userId);
        if (typing)
            timers.set(userId, setTimeout(() => set(userId, false), HIDE_MS));
        if (was !== typing)
            onChange(userId, typing);
    }

    return {
        set,
        isTyping: (userId) => timers.has(userId),
        clear() {
            timers.forEach((timer) => clearTimeout(timer));
            timers.clear();
        },
    };
}
