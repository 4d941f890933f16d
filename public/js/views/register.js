/*
 * The register view (#/register): the seven account fields. Empty fields and an age that is not a
 * whole number are caught here; every other rule is the server's, and its answer is shown next to
 * the field it names (or above the form when it names none). What the user typed stays put.
 */
import { h } from '../dom.js';
import { api, errorOf } from '../api.js';
import { field, fieldText, formMessage, onSubmit, showErrors } from '../form.js';

const GENDERS = [['female', 'Female'], ['male', 'Male'], ['other', 'Other']];

function input(name, attrs) {
    return h('input', { name, required: true, dir: 'auto', ...attrs });
}

export function registerView(ctx) {
    const fields = {
        nickname: field('register-nickname', 'Nickname',
            input('nickname', { type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', maxlength: 32 }),
            '3 to 32 letters, digits, _ . or -'),
        email: field('register-email', 'Email', input('email', { type: 'email', autocomplete: 'email', maxlength: 254 })),
        password: field('register-password', 'Password',
            input('password', { type: 'password', autocomplete: 'new-password', maxlength: 128 }),
            'At least 8 characters'),
        first_name: field('register-first-name', 'First name', input('first_name', { type: 'text', autocomplete: 'given-name', maxlength: 64 })),
        last_name: field('register-last-name', 'Last name', input('last_name', { type: 'text', autocomplete: 'family-name', maxlength: 64 })),
        age: field('register-age', 'Age',
            input('age', { type: 'number', inputmode: 'numeric', min: 13, max: 130, step: 1 })),
        gender: field('register-gender', 'Gender',
            h('select', { name: 'gender', required: true },
                h('option', { value: '' }, 'Choose…'),
                GENDERS.map(([value, label]) => h('option', { value }, label)))),
    };
    const message = formMessage();
    const button = h('button', { type: 'submit', class: 'button' }, 'Create account');
    const form = h('form', { id: 'register-form', class: 'form', novalidate: true, 'aria-labelledby': 'register-title' },
        message.node,
        fields.nickname.node, fields.email.node, fields.password.node,
        h('div', { class: 'row' }, fields.first_name.node, fields.last_name.node),
        h('div', { class: 'row' }, fields.age.node, fields.gender.node),
        h('div', { class: 'actions' }, button));

    onSubmit(form, button, 'Creating account…', async () => {
        message.clear();
        const values = {};
        const errors = {};
        for (const [name, f] of Object.entries(fields)) {
            values[name] = name === 'password' ? f.control.value : f.control.value.trim();
            if (!values[name])
                errors[name] = name === 'gender' ? 'Choose a gender.' : `${f.label} is required.`;
        }
        // a number input reads "" for text it cannot parse; what parses must still be a whole number
        const age = fields.age.control;
        if (age.validity.badInput || (values.age && !Number.isInteger(Number(values.age))))
            errors.age = 'Age must be a whole number.';
        if (showErrors(fields, errors))
            return;
        values.age = Number(values.age);

        const res = await api('POST', '/api/auth/register', values);
        if (res.status === 201 && res.json?.user) {
            ctx.onLoggedIn(res.json.user);
            return;
        }
        const err = errorOf(res);
        if (err.field && fields[err.field])
            showErrors(fields, { [err.field]: fieldText(fields[err.field].label, res.json.error.message, res.status) });
        else
            message.show(err.message);
    });

    const node = h('section', { class: 'auth', 'aria-labelledby': 'register-title' },
        h('h1', { id: 'register-title', tabindex: -1 }, 'Create an account'),
        h('p', { class: 'lead' }, 'All fields are required.'),
        form,
        h('p', { class: 'switch' }, 'Already have an account? ', h('a', { href: '#/login' }, 'Log in')));
    return { node, title: 'Create an account' };
}
