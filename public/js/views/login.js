/*
 * The login view (#/login): "Nickname or email" and password. On success it hands the user to
 * ctx.onLoggedIn; any failure is shown as text, next to a field when the server names one.
 */
import { h } from '../dom.js';
import { api, errorOf } from '../api.js';
import { field, fieldText, formMessage, onSubmit, showErrors } from '../form.js';

export function loginView(ctx) {
    const fields = {
        login: field('login-login', 'Nickname or email',
            h('input', { type: 'text', name: 'login', dir: 'auto', autocomplete: 'username', autocapitalize: 'none',
                         spellcheck: 'false', maxlength: 254, required: true })),
        password: field('login-password', 'Password',
            h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true })),
    };
    const message = formMessage();
    const button = h('button', { type: 'submit', class: 'button' }, 'Log in');
    const form = h('form', { id: 'login-form', class: 'form', novalidate: true, 'aria-labelledby': 'login-title' },
        message.node,
        Object.values(fields).map((f) => f.node),
        h('div', { class: 'actions' }, button));

    onSubmit(form, button, 'Logging in…', async () => {
        message.clear();
        const values = { login: fields.login.control.value.trim(), password: fields.password.control.value };
        const missing = {};
        for (const [name, f] of Object.entries(fields)) {
            if (!values[name])
                missing[name] = `${f.label} is required.`;
        }
        if (showErrors(fields, missing))
            return;

        const res = await api('POST', '/api/auth/login', values);
        if (res.status === 200 && res.json?.user) {
            ctx.onLoggedIn(res.json.user);
            return;
        }
        const err = errorOf(res);
        if (res.status === 401) {
            message.show('Wrong nickname, email or password.');
            fields.password.control.focus();
        } else if (err.field && fields[err.field]) {
            showErrors(fields, { [err.field]: fieldText(fields[err.field].label, res.json.error.message, res.status) });
        } else {
            message.show(err.message);
        }
    });

    const node = h('section', { class: 'auth', 'aria-labelledby': 'login-title' },
        h('h1', { id: 'login-title', tabindex: -1 }, 'Log in'),
        h('p', { class: 'lead' }, 'Welcome back to forumd.'),
        form,
        h('p', { class: 'switch' }, 'New here? ', h('a', { href: '#/register' }, 'Create an account')));
    return { node, title: 'Log in' };
}
