/*
 * Form pieces shared by the login and register views: a field (label, optional hint, control and
 * an error slot tied to the control with aria-describedby and aria-invalid) and a form-level
 * message. Errors are text only.
 */
import { h } from './dom.js';

/**
 * field(id, label, control, hint) puts control (an <input> or <select> built by the caller) under
 * its label and returns {node, control, label, setError(text), clearError()}. Typing in a control
 * clears its error.
 */
export function field(id, label, control, hint) {
    control.id = id;
    const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
    const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
    const node = h('div', { class: 'field' }, h('label', { for: id }, label), hintEl, control, errorEl);

    function describe() {
        const ids = [hintEl?.id, errorEl.hidden ? null : errorEl.id].filter(Boolean);
        if (ids.length)
            control.setAttribute('aria-describedby', ids.join(' '));
        else
            control.removeAttribute('aria-describedby');
    }

    const self = {
        node,
        control,
        label,
        setError(text) {
            errorEl.textContent = text;
            errorEl.hidden = false;
            control.setAttribute('aria-invalid', 'true');
            describe();
        },
        clearError() {
            errorEl.textContent = '';
            errorEl.hidden = true;
            control.removeAttribute('aria-invalid');
            describe();
        },
    };
    control.addEventListener(control.tagName === 'SELECT' ? 'change' : 'input', () => self.clearError());
    describe();
    return self;
}

/** The form-level message: a hidden alert until show(text). */
export function formMessage() {
    const node = h('p', { class: 'form-error', role: 'alert', hidden: true });
    return {
        node,
        show(text) {
            node.textContent = text;
            node.hidden = false;
        },
        clear() {
            node.textContent = '';
            node.hidden = true;
        },
    };
}

/**
 * Shows errors ({name: text}) on fields ({name: field}), clears the others, and moves focus to the
 * first invalid field in the order of `fields`. Returns true when there was an error to show.
 */
export function showErrors(fields, errors) {
    let first = null;
    for (const [name, f] of Object.entries(fields)) {
        if (errors[name]) {
            f.setError(errors[name]);
            first ??= f;
        } else {
            f.clearError();
        }
    }
    first?.control.focus();
    return first !== null;
}

/**
 * Guards a form against double submission: onSubmit(form, button, busyLabel, work) runs work() on
 * submit unless it is already running, with the button's text set to busyLabel meanwhile. The
 * button stays enabled so it keeps the focus.
 */
export function onSubmit(form, button, busyLabel, work) {
    let pending = false;
    const idleLabel = button.textContent;
    form.addEventListener('submit', async (event) => {
        event.preventDefault();
        if (pending)
            return;
        pending = true;
        button.textContent = busyLabel;
        form.setAttribute('aria-busy', 'true');
        try {
            await work();
        } finally {
            pending = false;
            // the view may be gone by now (logged in); the text change is harmless then
            button.textContent = idleLabel;
            form.removeAttribute('aria-busy');
        }
    });
}

/**
 * The text for a server error on a field: the server sends a fragment such as "must be between 13
 * and 130" or "required", which reads as a sentence after the field's label.
 */
export function fieldText(label, fragment, status) {
    const text = String(fragment || 'is not valid').trim().replace(/\.$/, '');
    if (status === 409)
        return `That ${label.toLowerCase()} is already taken.`;
    if (text === 'required')
        return `${label} is required.`;
    return /^(must|may|is|are|cannot|should)\b/.test(text) ? `${label} ${text}.` : `${label}: ${text}.`;
}
