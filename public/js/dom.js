/*
 * Element building without HTML strings. Text only ever becomes a text node and attributes only
 * ever go through setAttribute, so nothing a user typed can be parsed as markup; the page never
 * hands a string to the HTML parser.
 */

/**
 * h(tag, attrs, ...children) creates <tag>, sets its attributes and appends its children.
 *   attrs:    {name: value}; true sets an empty attribute, false/null/undefined leave it out,
 *             a function under an "on..." name becomes an event listener (the CSP forbids inline
 *             handlers, so a string there is a mistake and throws).
 *   children: Nodes, strings and numbers (as text), arrays of them (flattened); null, undefined and
 *             false are skipped so `cond && h(...)` works.
 */
export function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs ?? {})) {
        if (name.startsWith('on')) {
            if (typeof value !== 'function')
                throw new TypeError(`h(${tag}): ${name} must be a function`);
            el.addEventListener(name.slice(2), value);
        } else if (value === true) {
            el.setAttribute(name, '');
        } else if (value !== false && value != null) {
            el.setAttribute(name, String(value));
        }
    }
    append(el, children);
    return el;
}

/** Appends children to el with the same rules as h(); returns el. */
export function append(el, children) {
    for (const child of [children].flat(Infinity)) {
        if (child == null || child === false)
            continue;
        el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
}

/** Replaces everything inside el with children; returns el. */
export function replace(el, ...children) {
    el.replaceChildren();
    return append(el, children);
}
