/*
 * The forum home (#/): a welcome, and the members who joined while this page has been open, live.
 */
import { h, replace } from '../dom.js';

const PRESENCE = { true: 'online', false: 'offline' };

function memberItem(member) {
    const time = member.joinedAt.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
    return h('li', { class: 'member' },
        h('span', { class: 'member-name' }, member.nickname),
        member.online !== null && h('span', { class: 'presence', 'data-online': String(member.online) }, PRESENCE[member.online]),
        h('span', { class: 'member-meta' }, 'joined ', h('time', { datetime: member.joinedAt.toISOString() }, time)));
}

export function homeView(ctx) {
    const list = h('ul', { class: 'member-list', 'aria-labelledby': 'new-members-title' });
    const empty = h('p', { class: 'muted' }, 'No one has joined since you opened this page.');
    const unsubscribe = ctx.members.subscribe((members) => {
        replace(list, members.map(memberItem));
        list.hidden = members.length === 0;
        empty.hidden = members.length !== 0;
    });

    const node = h('section', { class: 'home', 'aria-labelledby': 'home-title' },
        h('h1', { id: 'home-title', tabindex: -1 }, 'Welcome, ', h('span', { class: 'nickname' }, ctx.user.nickname)),
        h('p', { class: 'lead' }, 'This page updates live while it is open.'),
        h('section', { class: 'panel members', 'aria-labelledby': 'members-title' },
            h('h2', { id: 'members-title' }, 'Members'),
            h('h3', { id: 'new-members-title' }, 'New members'),
            h('div', { 'aria-live': 'polite' }, list, empty)));
    return { node, title: 'Forum', destroy: unsubscribe };
}
