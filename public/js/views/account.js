/*
 * The account view (#/account): your profile, read fresh from GET /api/auth/me.
 */
import { h, replace } from '../dom.js';
import { api, errorOf } from '../api.js';

const GENDERS = { female: 'Female', male: 'Male', other: 'Other' };

function profile(user) {
    const since = new Date(user.created_at);
    const rows = [
        ['Nickname', user.nickname],
        ['Name', `${user.first_name} ${user.last_name}`],
        ['Email', user.email],
        ['Age', String(user.age)],
        ['Gender', GENDERS[user.gender] ?? user.gender],
        ['Member since', h('time', { datetime: user.created_at },
            since.toLocaleString(undefined, { dateStyle: 'long', timeStyle: 'short' }))],
    ];
    return h('dl', { class: 'profile' },
        rows.map(([term, value]) => h('div', { class: 'profile-row' }, h('dt', null, term), h('dd', { dir: 'auto' }, value))));
}

export function accountView(ctx) {
    const body = h('div', { class: 'panel', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading your profile…'));
    let gone = false;

    (async () => {
        const res = await api('GET', '/api/auth/me');
        if (gone)
            return;
        if (res.status === 200 && res.json?.user)
            replace(body, profile(res.json.user));
        else if (res.status === 401)
            ctx.onAuthLost();
        else
            replace(body, h('p', { class: 'form-error', role: 'alert' }, errorOf(res).message));
    })();

    const node = h('section', { class: 'account', 'aria-labelledby': 'account-title' },
        h('h1', { id: 'account-title', tabindex: -1 }, 'Your account'),
        body);
    return { node, title: 'Account', destroy: () => { gone = true; } };
}
